//! The processes of a container (`docker top`, `GET /containers/{id}/top`): the host's `ps`
//! run as a child process with the caller's options, keeping the rows whose PID is in the
//! container's cgroup (as dockerd does).

use std::process::Command;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::Engine;

/// docker's top reply: column titles and one row per process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// Split `ps` output into titles and the rows whose PID is one of `pids`. A row has as many
/// fields as there are titles, the last one taking the rest of the line (the command).
pub fn parse_ps(text: &str, pids: &[i32]) -> std::result::Result<Top, String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or("ps printed nothing")?;
    let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let col = titles
        .iter()
        .position(|f| f == "PID")
        .ok_or_else(|| format!("no PID column in ps output header {header:?}"))?;
    let mut processes = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let row = split_row(line, titles.len());
        let Some(field) = row.get(col) else {
            continue;
        };
        let pid: i32 = field
            .parse()
            .map_err(|_| format!("unexpected PID {field:?} in ps output line {line:?}"))?;
        if pids.contains(&pid) {
            processes.push(row);
        }
    }
    Ok(Top { titles, processes })
}

/// The first `n - 1` whitespace-separated fields, then the rest of the line.
fn split_row(line: &str, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    let mut rest = line.trim_start();
    while out.len() + 1 < n {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        out.push(rest[..end].to_string());
        rest = rest[end..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest.trim_end().to_string());
    }
    out
}

impl Engine {
    /// The processes of the running container `key`, as `ps ps_args` (default `-ef`) shows
    /// them.
    pub fn top(&self, key: &str, ps_args: &[String]) -> Result<Top> {
        let (rec, _) = self.find_active(key, "its processes are listed while it runs")?;
        let pids = self.runtime()?.load(&rec.id)?.cgroup.pids()?;
        let args: Vec<&str> = if ps_args.is_empty() {
            vec!["-ef"]
        } else {
            ps_args.iter().map(String::as_str).collect()
        };
        let what = format!("ps {}", args.join(" "));
        let out = Command::new("ps")
            .args(&args)
            .output()
            .map_err(|e| Error::Io {
                what: "run ps for the container's processes",
                path: "ps".into(),
                source: e,
            })?;
        if !out.status.success() {
            return Err(Error::BadParameter(format!(
                "{what} ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
            .map_err(|e| Error::BadParameter(format!("{what} for container {}: {e}", rec.id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_of_the_container() {
        let text = "UID          PID    PPID  C STIME TTY          TIME CMD\nroot           1       0  0 08:00 ?        00:00:01 /sbin/init splash\nroot         42       1  0 08:01 ?        00:00:00 sleep 61\nroot         43       1  0 08:01 ?        00:00:00 sh -c x\n";
        let top = parse_ps(text, &[42, 43]).unwrap();
        assert_eq!(top.titles.len(), 8);
        assert_eq!(top.titles[1], "PID");
        assert_eq!(top.processes.len(), 2);
        assert_eq!(top.processes[0][1], "42");
        assert_eq!(top.processes[0][7], "sleep 61");
        assert_eq!(top.processes[1][7], "sh -c x");
        assert!(parse_ps("USER CMD\nroot x\n", &[1]).is_err());
        assert!(parse_ps("PID CMD\nabc x\n", &[1]).is_err());
        let json = serde_json::to_value(&top).unwrap();
        assert_eq!(json["Titles"][7], "CMD");
    }
}
