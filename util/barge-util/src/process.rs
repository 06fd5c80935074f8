//! Whether a process is alive and still the one we started: its pid and its start time (field
//! 22 of `/proc/PID/stat`, clock ticks since boot) together name it, so a reused pid is not
//! mistaken for it.

use std::fs;

/// What `/proc/PID/stat` says that barge needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// The state letter (`R`, `S`, `D`, `Z`, `T`, `X`, …).
    pub state: char,
    pub ppid: i32,
    /// Clock ticks since boot at which the process started.
    pub start_time: u64,
}

impl Stat {
    /// Whether it is a zombie or dead (exited, waiting to be or being reaped).
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parse the text of `/proc/PID/stat`. The command name (field 2) is in parentheses and may
/// itself contain spaces and parentheses, so the fields after it are found after the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = text.get(text.rfind(')')? + 1..)?.trim_start();
    // `rest` starts at field 3 (state).
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    // Field 4 was ppid; starttime is field 22, 18 further on.
    let start_time = fields.nth(17)?.parse().ok()?;
    Some(Stat {
        state,
        ppid,
        start_time,
    })
}

/// `/proc/PID/stat` of `pid`; `None` when there is no such process (or it could not be read).
pub fn stat(pid: i32) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The start time of `pid`, to record next to it.
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|s| s.start_time)
}

/// Whether `pid` is running (not a zombie) at all.
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|s| !s.is_dead())
}

/// Whether `pid` is running (not a zombie) and is still the process that started at `start`.
pub fn alive_since(pid: i32, start: u64) -> bool {
    stat(pid).is_some_and(|s| s.start_time == start && !s.is_dead())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(comm: &str) -> String {
        format!("4242 ({comm}) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0")
    }

    #[test]
    fn parses_fields_after_the_command_name() {
        let s = parse_stat(&line("sleep")).unwrap();
        assert_eq!(
            s,
            Stat {
                state: 'S',
                ppid: 1,
                start_time: 987_654
            }
        );
    }

    #[test]
    fn a_command_name_with_parentheses_and_spaces() {
        for comm in ["a) (b", ") (", "x) R 9 (", "((", "))", " "] {
            let s = parse_stat(&line(comm)).unwrap_or_else(|| panic!("{comm:?}"));
            assert_eq!(
                (s.state, s.ppid, s.start_time),
                ('S', 1, 987_654),
                "{comm:?}"
            );
        }
    }

    #[test]
    fn truncated_text_is_none() {
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("1 (x) S 1 2 3"), None);
        assert_eq!(parse_stat("1 x S"), None);
    }

    #[test]
    fn own_process_is_alive_and_start_time_matters() {
        let pid = std::process::id() as i32;
        let start = start_time(pid).unwrap();
        assert!(alive(pid));
        assert!(alive_since(pid, start));
        assert!(!alive_since(pid, start + 1));
        assert!(!alive(0));
        assert!(!alive(-1));
    }

    #[test]
    fn a_zombie_is_not_alive() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // Not waited for: once it exits it stays a zombie until reaped.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while alive(pid) {
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(stat(pid).map(|s| s.state), Some('Z'));
        let mut child = child;
        child.wait().unwrap();
    }
}
