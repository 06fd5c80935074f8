//! `ps`: the processes of a container, as runc lists them: a JSON array of the pids in its
//! cgroup, or the host's `ps` output (header plus the lines of those pids).
use std::process::Command;

use barge_runtime::{Error, Result, Store};

use super::Format;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: the host's ps table, or a JSON array of pids.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Container id.
    pub id: String,
    /// Options passed to the host's ps (default: -ef); put them after the id.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PS_OPTIONS"
    )]
    pub ps_args: Vec<String>,
}

pub fn run(store: &Store, a: &Args) -> Result<i32> {
    let st = store.load(&a.id)?;
    let pids = st.cgroup.pids()?;
    if a.format == Format::Json {
        let s = serde_json::to_string(&pids)
            .map_err(|e| Error::Container(format!("encode pids of {}: {e}", a.id)))?;
        println!("{s}");
        return Ok(0);
    }
    let args: Vec<&str> = if a.ps_args.is_empty() {
        vec!["-ef"]
    } else {
        a.ps_args.iter().map(String::as_str).collect()
    };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Error::Io {
            context: format!("run ps {} for container {}", args.join(" "), a.id),
            source: e,
        })?;
    if !out.status.success() {
        return Err(Error::Container(format!(
            "ps {} ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    for line in filter(&text, &pids).map_err(|e| Error::Container(format!("ps {}: {e}", a.id)))? {
        println!("{line}");
    }
    Ok(0)
}

/// The header of `ps` output and the lines whose PID column is one of `pids`.
fn filter<'a>(text: &'a str, pids: &[i32]) -> std::result::Result<Vec<&'a str>, String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or("ps printed nothing")?;
    let col = header
        .split_whitespace()
        .position(|f| f == "PID")
        .ok_or_else(|| format!("no PID column in ps output header {header:?}"))?;
    let mut out = vec![header];
    for line in lines {
        let Some(field) = line.split_whitespace().nth(col) else {
            continue;
        };
        let pid: i32 = field
            .parse()
            .map_err(|_| format!("unexpected PID {field:?} in ps output line {line:?}"))?;
        if pids.contains(&pid) {
            out.push(line);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_container_lines_by_pid_column() {
        let text = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                    root           1       0  0 10:00 ?        00:00:01 /sbin/init\n\
                    root        4242       1  0 10:01 ?        00:00:00 sleep 4243\n\
                    root        4243    4242  0 10:01 ?        00:00:00 sh -c 1\n";
        let got = filter(text, &[4242, 4243]).unwrap();
        assert_eq!(got.len(), 3);
        assert!(got[0].starts_with("UID"));
        assert!(got[1].contains("sleep 4243"));
        assert!(got[2].contains("sh -c 1"));
        // Matching is by the PID column only, not anywhere in the line.
        assert_eq!(filter(text, &[1]).unwrap().len(), 2);
        assert_eq!(filter(text, &[0]).unwrap().len(), 1);
        assert!(filter("USER COMMAND\nroot x\n", &[1]).is_err());
        assert!(filter("", &[1]).is_err());
    }
}
