//! RUN: the command in a barge container whose rootfs is a writable overlay snapshot on the
//! stage's layers, with the stage's environment (ARGs in effect under its ENV), user, working
//! directory and network; its output streamed to the progress writer; its changes (the
//! snapshot's upper directory) made a layer.

use std::collections::VecDeque;
use std::io::Read;

use barge_engine::config::ContainerConfig;
use barge_engine::container::Streams;
use barge_engine::create::CreateOptions;
use barge_engine::Engine;
use barge_shim::protocol;

use super::error::{BuildError, Result};
use super::layer::{commit_dir, Filter, LayerRef};
use super::state::StageState;

/// How many output lines a failed RUN's error repeats.
const TAIL_LINES: usize = 10;

/// What a RUN needs besides the stage.
pub struct RunStep<'a> {
    pub argv: Vec<String>,
    /// `none` or `` (the engine's default network).
    pub network: &'a str,
    /// The stage's ARGs for the process's environment (under its ENV).
    pub args: &'a [(String, String)],
    pub line: usize,
    pub text: &'a str,
    pub epoch: Option<i64>,
}

/// Run the step; its layer (None when it changed nothing). A non-zero exit is an error
/// naming the line, with the output's last lines.
pub fn run(
    engine: &Engine,
    stage: &StageState,
    step: &RunStep<'_>,
    out: &mut dyn super::progress::Sink,
) -> Result<Option<LayerRef>> {
    let image = stage.as_image()?;
    let mut env: Vec<String> = Vec::new();
    let own = stage.env();
    for (k, v) in step.args {
        if !own.iter().any(|(o, _)| o == k) {
            env.push(format!("{k}={v}"));
        }
    }
    if !own.iter().any(|(k, _)| k == "PATH") {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    let config = ContainerConfig {
        image: "barge-build".into(),
        env,
        network: step.network.to_string(),
        ..Default::default()
    };
    let opts = CreateOptions {
        name: Some(format!(
            "barge-build-{}-{}",
            std::process::id(),
            barge_image::meta::now_nanos()
        )),
        entrypoint: Some(Vec::new()),
        cmd: step.argv.clone(),
        config,
    };
    let rec = engine.create_from_image(opts, &image)?;
    let guard = Remove {
        engine,
        id: &rec.id,
    };
    let started = engine.start(
        &rec.id,
        Some(Streams {
            stdin: false,
            stdout: true,
            stderr: true,
        }),
    );
    let sock = match started {
        Ok((_, Some(sock))) => sock,
        Ok((_, None)) => {
            return Err(BuildError::at(
                step.line,
                "RUN: no output stream from the container",
            ))
        }
        Err(e) => return Err(BuildError::at(step.line, format!("{}: {e}", step.text))),
    };
    let (code, tail) = pump(sock, out);
    let code = match code {
        Some(c) => c,
        None => {
            // The stream ended without an exit frame: ask the engine.
            engine.wait(&rec.id).unwrap_or(255)
        }
    };
    if code != 0 {
        let mut msg = format!("{} exited with {code}", step.text);
        if !tail.is_empty() {
            msg.push_str("\n  last output:\n");
            for l in &tail {
                msg.push_str("    ");
                msg.push_str(l);
                msg.push('\n');
            }
        }
        return Err(BuildError::at(step.line, msg.trim_end().to_string()));
    }
    let snap = engine.images.snapshots.get(&rec.id)?;
    let upper = engine.images.snapshots.fs_dir(snap.id);
    let layer = commit_dir(
        &engine.images,
        &upper,
        &stage.diff_ids(),
        step.epoch,
        Filter::RunMounts,
    )?;
    drop(guard);
    Ok(layer)
}

/// Removes the RUN container however the step ends.
struct Remove<'a> {
    engine: &'a Engine,
    id: &'a str,
}

impl Drop for Remove<'_> {
    fn drop(&mut self) {
        let _ = self.engine.remove(self.id, true, true);
    }
}

/// Copy the container's output frames to `out`; the exit code (None if the stream ended
/// without one) and the last lines.
fn pump(
    mut sock: std::os::unix::net::UnixStream,
    out: &mut dyn super::progress::Sink,
) -> (Option<i32>, Vec<String>) {
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut partial = String::new();
    let mut header = [0u8; 8];
    let mut buf = Vec::new();
    let code = loop {
        if sock.read_exact(&mut header).is_err() {
            break None;
        }
        let (stream, len) = protocol::parse_header(&header);
        buf.resize(len, 0);
        if sock.read_exact(&mut buf).is_err() {
            break None;
        }
        match stream {
            protocol::STDOUT | protocol::STDERR => {
                out.output(&buf);
                partial.push_str(&String::from_utf8_lossy(&buf));
                while let Some(i) = partial.find('\n') {
                    let line: String = partial.drain(..=i).collect();
                    tail.push_back(line.trim_end().to_string());
                    if tail.len() > TAIL_LINES {
                        tail.pop_front();
                    }
                }
            }
            protocol::EXIT => {
                break Some(String::from_utf8_lossy(&buf).trim().parse().unwrap_or(255));
            }
            _ => {}
        }
    };
    if !partial.trim().is_empty() {
        tail.push_back(partial.trim_end().to_string());
        if tail.len() > TAIL_LINES {
            tail.pop_front();
        }
    }
    (code, tail.into_iter().collect())
}
