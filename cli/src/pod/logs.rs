//! `barge pod logs`: every container's log, each line prefixed with the container's name
//! (one thread per container with `-f`).

use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use barge_engine::logs::{parse_tail, LogOptions};

use crate::container::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of each container's log ("all").
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only this container of the pod.
    #[arg(short, long)]
    pub container: Option<String>,
    pub pod: String,
}

/// Writes whole lines, each prefixed, to a shared sink.
struct Prefixed<W: Write> {
    prefix: String,
    buf: Vec<u8>,
    sink: Arc<Mutex<W>>,
}

impl<W: Write> Write for Prefixed<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        while let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            let mut s = self.sink.lock().unwrap_or_else(|p| p.into_inner());
            s.write_all(self.prefix.as_bytes())?;
            s.write_all(&line)?;
            s.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let mut s = self.sink.lock().unwrap_or_else(|p| p.into_inner());
            s.write_all(self.prefix.as_bytes())?;
            s.write_all(&self.buf)?;
            s.write_all(b"\n")?;
            self.buf.clear();
        }
        Ok(())
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let engine = ctx.engine()?;
    let pod = engine.pod_find(&args.pod)?;
    let mut members = engine.pod_containers(&pod.id)?;
    if let Some(c) = &args.container {
        let rec = engine.db.find(c)?;
        if rec.config.pod.as_deref() != Some(pod.id.as_str()) {
            anyhow::bail!("container {c} is not in pod {}", pod.name);
        }
        members.retain(|m| m.id == rec.id);
    }
    let opts = LogOptions {
        tail: parse_tail("--tail", &args.tail)?,
        since: None,
        until: None,
        timestamps: args.timestamps,
        stdout: true,
        stderr: true,
        follow: args.follow,
    };
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let err = Arc::new(Mutex::new(std::io::stderr()));
    let width = members.iter().map(|m| m.name.len()).max().unwrap_or(0);
    let mut threads = Vec::new();
    for m in members {
        let engine = engine.clone();
        let opts = opts.clone();
        let prefix = format!("{:<width$} | ", m.name);
        let (out, err) = (out.clone(), err.clone());
        let job = move || -> Result<()> {
            let mut o = Prefixed {
                prefix: prefix.clone(),
                buf: Vec::new(),
                sink: out,
            };
            let mut e = Prefixed {
                prefix,
                buf: Vec::new(),
                sink: err,
            };
            engine.logs_to(&m.id, &opts, (&mut o, &mut e))?;
            o.flush()?;
            e.flush()?;
            Ok(())
        };
        if args.follow {
            threads.push(std::thread::spawn(job));
        } else {
            job()?;
        }
    }
    let mut code = 0;
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("barge: {}", crate::format::error_chain(&e));
                code = 1;
            }
            Err(_) => code = 1,
        }
    }
    Ok(code)
}
