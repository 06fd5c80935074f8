//! The client side of an attach: the container's output frames to our stdout/stderr, our
//! stdin to the container, terminal raw mode, resize on SIGWINCH, the ^P^Q detach sequence,
//! and signals proxied to the container (non-terminal foreground runs, like docker's
//! `--sig-proxy`).

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use barge_engine::frames as protocol;
use barge_engine::Engine;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};

/// How an attach session ended.
pub enum Ended {
    /// The container exited with this code.
    Exited(i32),
    /// The user detached (^P^Q) or the connection closed before an exit.
    Detached,
}

pub struct Options {
    /// The container's id (an exec's for [`pump_exec`]).
    pub id: String,
    pub tty: bool,
    pub stdin: bool,
    /// Forward SIGINT/SIGTERM/... to the container.
    pub sig_proxy: bool,
}

/// Docker's default detach keys: ctrl-p, ctrl-q.
const DETACH: [u8; 2] = [0x10, 0x11];

pub fn pump(engine: Arc<Engine>, sock: UnixStream, opts: Options) -> Ended {
    pump_to(engine, sock, opts, false)
}

/// [`pump`] for an attached exec (`opts.id` is the exec's): its terminal is resized.
pub fn pump_exec(engine: Arc<Engine>, sock: UnixStream, opts: Options) -> Ended {
    pump_to(engine, sock, opts, true)
}

fn pump_to(engine: Arc<Engine>, sock: UnixStream, opts: Options, exec: bool) -> Ended {
    let raw = if opts.tty && opts.stdin {
        Some(barge_engine::terminal::RawMode::enter())
    } else {
        None
    };
    // (An exec's terminal got our size when it started.)
    if opts.tty && !exec {
        resize(&engine, &opts.id, exec);
    }
    start_signal_thread(engine.clone(), &opts, exec);
    let detached = Arc::new(AtomicBool::new(false));
    if opts.stdin {
        if let Ok(writer) = sock.try_clone() {
            let detached = detached.clone();
            let tty = opts.tty;
            std::thread::spawn(move || copy_stdin(writer, tty, &detached));
        }
    }
    let ended = read_frames(sock, &detached);
    drop(raw);
    ended
}

fn read_frames(mut sock: UnixStream, detached: &AtomicBool) -> Ended {
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let mut header = [0u8; 8];
    let mut buf = Vec::new();
    loop {
        if sock.read_exact(&mut header).is_err() {
            return Ended::Detached;
        }
        let (stream, len) = protocol::parse_header(&header);
        buf.resize(len, 0);
        if sock.read_exact(&mut buf).is_err() {
            return Ended::Detached;
        }
        if detached.load(Ordering::SeqCst) {
            return Ended::Detached;
        }
        match stream {
            protocol::STDOUT => {
                let _ = out.write_all(&buf);
                let _ = out.flush();
            }
            protocol::STDERR => {
                let _ = err.write_all(&buf);
            }
            protocol::EXIT => {
                let code = String::from_utf8_lossy(&buf).trim().parse().unwrap_or(255);
                return Ended::Exited(code);
            }
            _ => {}
        }
    }
}

fn copy_stdin(mut sock: UnixStream, tty: bool, detached: &AtomicBool) {
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 8192];
    let mut prev_ctrl_p = false;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut data = &buf[..n];
        if tty {
            // ^P^Q detaches; a lone ^P is passed on with the next byte.
            let mut keep = Vec::with_capacity(n + 1);
            if prev_ctrl_p {
                if data.first() == Some(&DETACH[1]) {
                    detached.store(true, Ordering::SeqCst);
                    let _ = sock.shutdown(Shutdown::Both);
                    return;
                }
                keep.push(DETACH[0]);
                prev_ctrl_p = false;
            }
            let mut i = 0;
            while i < data.len() {
                if data[i] == DETACH[0] {
                    match data.get(i + 1) {
                        Some(&b) if b == DETACH[1] => {
                            let _ = sock.write_all(&keep);
                            detached.store(true, Ordering::SeqCst);
                            let _ = sock.shutdown(Shutdown::Both);
                            return;
                        }
                        None => {
                            prev_ctrl_p = true;
                            i += 1;
                            continue;
                        }
                        _ => {}
                    }
                }
                keep.push(data[i]);
                i += 1;
            }
            if sock.write_all(&keep).is_err() {
                return;
            }
            data = &[];
        }
        if !data.is_empty() && sock.write_all(data).is_err() {
            return;
        }
    }
    // Our stdin ended: the container's stdin closes too (docker's run -i).
    let _ = sock.shutdown(Shutdown::Write);
}

/// A thread that resizes the container's terminal on SIGWINCH and, with `sig_proxy`, sends
/// the container the signals we get.
fn start_signal_thread(engine: Arc<Engine>, opts: &Options, exec: bool) {
    let mut set = SigSet::empty();
    if opts.tty {
        set.add(Signal::SIGWINCH);
    }
    if opts.sig_proxy {
        for s in [
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGQUIT,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
        ] {
            set.add(s);
        }
    }
    if set.iter().next().is_none() {
        return;
    }
    // Blocked in this (the main) thread before any other thread starts, so they inherit
    // the mask and only `wait` below takes these signals.
    if nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).is_err() {
        return;
    }
    let id = opts.id.clone();
    std::thread::spawn(move || loop {
        let Ok(sig) = set.wait() else { return };
        if sig == Signal::SIGWINCH {
            resize(&engine, &id, exec);
        } else {
            let _ = engine.kill(&id, sig.as_str());
        }
    });
}

/// Give the container's (or exec's) terminal the size of ours.
fn resize(engine: &Engine, id: &str, exec: bool) {
    if let Some((rows, cols)) = barge_engine::terminal::terminal_size() {
        let _ = if exec {
            engine.exec_resize(id, rows, cols)
        } else {
            engine.resize(id, rows, cols)
        };
    }
}
