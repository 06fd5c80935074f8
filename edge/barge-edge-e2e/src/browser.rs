//! [`Browser`]: headless Debian `chromium` driven by `scripts/browser.py` (with
//! python3-selenium and chromium-driver): one JSON command a line, each answer awaited with
//! a deadline; the browser is quit when its stdin closes and the driver killed on drop.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use serde_json::{json, Value};

pub struct Browser {
    child: Child,
    stdin: Option<ChildStdin>,
    answers: Receiver<String>,
}

impl Browser {
    /// Start the driver and Chromium (panics with the reason when they do not come up).
    pub fn start() -> Browser {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/browser.py");
        // Debian's python3: python3-selenium is a Debian package (a pyenv python lacks it).
        let python = if std::path::Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let mut child = Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 scripts/browser.py");
        let stdout = child.stdout.take().expect("browser stdout");
        let (tx, answers) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut b = Browser {
            stdin: child.stdin.take(),
            child,
            answers,
        };
        b.answer(Duration::from_secs(40))
            .unwrap_or_else(|e| panic!("chromium did not start: {e}"));
        b
    }

    fn answer(&mut self, timeout: Duration) -> Result<Value, String> {
        let line = self
            .answers
            .recv_timeout(timeout)
            .map_err(|e| format!("no answer from the browser driver in {timeout:?}: {e}"))?;
        let v: Value =
            serde_json::from_str(&line).map_err(|e| format!("driver said {line:?}: {e}"))?;
        if v["ok"] == true {
            Ok(v["value"].clone())
        } else {
            Err(v["error"].as_str().unwrap_or("?").to_string())
        }
    }

    /// Run one command (`{"op": ...}`); its value or the driver's error.
    pub fn try_cmd(&mut self, cmd: Value) -> Result<Value, String> {
        let timeout = Duration::from_secs(cmd["timeout"].as_u64().unwrap_or(20) + 20);
        let stdin = self.stdin.as_mut().ok_or("driver stdin closed")?;
        writeln!(stdin, "{cmd}").map_err(|e| format!("write to driver: {e}"))?;
        stdin.flush().map_err(|e| format!("write to driver: {e}"))?;
        self.answer(timeout)
    }

    /// Run one command; panics with the driver's error.
    pub fn cmd(&mut self, cmd: Value) -> Value {
        let what = cmd.to_string();
        self.try_cmd(cmd)
            .unwrap_or_else(|e| panic!("browser {what}: {e}"))
    }

    pub fn open(&mut self, url: &str) -> String {
        self.cmd(json!({"op": "open", "url": url}))
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The text of the first element matching `css` (None when there is none).
    pub fn text(&mut self, css: &str) -> Option<String> {
        self.cmd(json!({"op": "text", "css": css}))
            .as_str()
            .map(str::to_string)
    }

    /// Wait until the element's text contains `text`.
    pub fn wait_text(
        &mut self,
        css: &str,
        text: &str,
        timeout: Duration,
    ) -> Result<String, String> {
        self.try_cmd(
            json!({"op": "wait_text", "css": css, "text": text, "timeout": timeout.as_secs()}),
        )
        .map(|v| v.as_str().unwrap_or("").to_string())
    }

    pub fn js(&mut self, script: &str) -> Value {
        self.cmd(json!({"op": "js", "script": script}))
    }

    pub fn screenshot(&mut self, path: &std::path::Path) {
        self.cmd(json!({"op": "screenshot", "path": path.to_str().unwrap_or("")}));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing stdin quits Chromium; then make sure.
        self.stdin = None;
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
