//! One logical line to an instruction: its name (case-insensitive), its flags (each
//! instruction accepts only its own), and its operands in shell, JSON or key=value form.

use super::lines::LogicalLine;
use super::words::{self, Flag};
use super::ParseError;
use crate::ast::{ArgDecl, Command, CopyArgs, Health, Inst, Instruction};

/// A parsed line: a `FROM` (opens a stage) or an instruction inside one.
pub(crate) enum Parsed {
    From {
        base: String,
        name: Option<String>,
        platform: Option<String>,
    },
    Inst(Instruction),
}

/// Flags BuildKit knows but barge does not implement: refused by name.
const UNSUPPORTED_FLAGS: &[(&str, &str)] = &[
    (
        "security",
        "RUN --security (insecure builds) is not supported by barge",
    ),
    (
        "device",
        "RUN --device is a BuildKit labs feature barge does not support",
    ),
    (
        "parents",
        "--parents is a BuildKit labs feature barge does not support",
    ),
    (
        "exclude",
        "--exclude is a BuildKit labs feature barge does not support",
    ),
    ("unpack", "ADD --unpack is not supported by barge"),
];

/// Every flag barge knows, to tell "unknown" from "not allowed here".
const KNOWN_FLAGS: &[&str] = &[
    "from",
    "chown",
    "chmod",
    "link",
    "platform",
    "network",
    "mount",
    "checksum",
    "keep-git-dir",
    "interval",
    "timeout",
    "start-period",
    "start-interval",
    "retries",
];

struct Flags {
    line: usize,
    inst: &'static str,
    flags: Vec<Flag>,
}

impl Flags {
    fn check(&self, allowed: &[&str]) -> Result<(), ParseError> {
        let mut seen: Vec<&str> = Vec::new();
        for f in &self.flags {
            if let Some((_, why)) = UNSUPPORTED_FLAGS.iter().find(|(n, _)| *n == f.name) {
                return Err(ParseError::new(self.line, *why));
            }
            if !allowed.contains(&f.name.as_str()) {
                return Err(ParseError::new(
                    self.line,
                    if KNOWN_FLAGS.contains(&f.name.as_str()) {
                        format!("flag --{} is not allowed on {}", f.name, self.inst)
                    } else {
                        format!("unknown flag --{} on {}", f.name, self.inst)
                    },
                ));
            }
            if f.name != "mount" && seen.contains(&f.name.as_str()) {
                return Err(ParseError::new(
                    self.line,
                    format!("flag --{} given twice on {}", f.name, self.inst),
                ));
            }
            seen.push(&f.name);
        }
        Ok(())
    }

    /// A flag that needs a value.
    fn value(&self, name: &str) -> Result<Option<String>, ParseError> {
        match self.flags.iter().find(|f| f.name == name) {
            None => Ok(None),
            Some(Flag { value: Some(v), .. }) if !v.is_empty() => Ok(Some(v.clone())),
            Some(_) => Err(ParseError::new(
                self.line,
                format!(
                    "flag --{name} on {} needs a value (--{name}=...)",
                    self.inst
                ),
            )),
        }
    }

    fn values(&self, name: &str) -> Result<Vec<String>, ParseError> {
        self.flags
            .iter()
            .filter(|f| f.name == name)
            .map(|f| match &f.value {
                Some(v) if !v.is_empty() => Ok(v.clone()),
                _ => Err(ParseError::new(
                    self.line,
                    format!(
                        "flag --{name} on {} needs a value (--{name}=...)",
                        self.inst
                    ),
                )),
            })
            .collect()
    }

    /// A boolean flag: `--link`, `--link=true`, `--link=false`.
    fn boolean(&self, name: &str) -> Result<bool, ParseError> {
        match self.flags.iter().find(|f| f.name == name) {
            None => Ok(false),
            Some(f) => match f.value.as_deref() {
                None | Some("true") => Ok(true),
                Some("false") => Ok(false),
                Some(v) => Err(ParseError::new(
                    self.line,
                    format!(
                        "flag --{name} on {}: expected true or false, got {v:?}",
                        self.inst
                    ),
                )),
            },
        }
    }
}

const INSTRUCTIONS: &[&str] = &[
    "FROM",
    "ARG",
    "ENV",
    "LABEL",
    "WORKDIR",
    "USER",
    "RUN",
    "COPY",
    "ADD",
    "EXPOSE",
    "VOLUME",
    "CMD",
    "ENTRYPOINT",
    "SHELL",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "ONBUILD",
    "MAINTAINER",
];

/// Parses one logical line.
pub(crate) fn parse_line(l: &LogicalLine, escape: char) -> Result<Parsed, ParseError> {
    let (name, rest) = words::split_first(&l.text);
    let upper = name.to_ascii_uppercase();
    let Some(inst) = INSTRUCTIONS.iter().copied().find(|i| *i == upper) else {
        return Err(ParseError::new(
            l.line,
            format!("unknown instruction: {name}"),
        ));
    };
    let (flags, rest) = words::take_flags(rest, escape);
    let flags = Flags {
        line: l.line,
        inst,
        flags,
    };
    let rest = rest.trim();
    if inst == "FROM" {
        return from(&flags, rest, l.line);
    }
    let mut original = l.text.clone();
    original.push_str(&l.heredoc_source);
    let kind = kind(inst, &flags, rest, l, escape)?;
    Ok(Parsed::Inst(Instruction {
        line: l.line,
        original,
        kind,
    }))
}

fn missing(line: usize, inst: &str, what: &str) -> ParseError {
    ParseError::new(line, format!("{inst} requires {what}"))
}

fn from(flags: &Flags, rest: &str, line: usize) -> Result<Parsed, ParseError> {
    flags.check(&["platform"])?;
    let w = words::split_words(rest, '\\');
    let (base, name) = match w.as_slice() {
        [] => return Err(missing(line, "FROM", "an image (FROM IMAGE [AS NAME])")),
        [base] => (base.clone(), None),
        [base, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let name = name.to_ascii_lowercase();
            let mut chars = name.chars();
            let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(ParseError::new(
                    line,
                    format!(
                        "invalid stage name {name:?}: a letter then letters, digits, -, _ or ."
                    ),
                ));
            }
            (base.clone(), Some(name))
        }
        _ => {
            return Err(ParseError::new(
                line,
                format!("FROM takes IMAGE [AS NAME], got {rest:?}"),
            ))
        }
    };
    Ok(Parsed::From {
        base,
        name,
        platform: flags.value("platform")?,
    })
}

fn command(rest: &str) -> Command {
    match words::json_array(rest) {
        Some(v) => Command::Exec(v),
        None => Command::Shell(rest.to_string()),
    }
}

/// `k=v k2="v 2"` or the legacy `k v w` (one pair, the rest of the line is the value).
fn pairs(
    inst: &str,
    rest: &str,
    line: usize,
    escape: char,
) -> Result<Vec<(String, String)>, ParseError> {
    let ws = words::split_words(rest, escape);
    let Some(first) = ws.first() else {
        return Err(missing(line, inst, "at least one key=value pair"));
    };
    if !first.contains('=') {
        let (key, value) = words::split_first(rest);
        if value.is_empty() {
            return Err(ParseError::new(
                line,
                format!("{inst} {key} has no value (use {inst} {key}=VALUE or {inst} {key} VALUE)"),
            ));
        }
        return Ok(vec![(key.to_string(), value.to_string())]);
    }
    let mut out = Vec::new();
    for w in ws {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ParseError::new(
                line,
                format!("{inst}: {w:?} is not key=value (mixing key=value and the legacy form)"),
            ));
        };
        if k.is_empty() {
            return Err(ParseError::new(
                line,
                format!("{inst}: empty name in {w:?}"),
            ));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

fn args(rest: &str, line: usize, escape: char) -> Result<Vec<ArgDecl>, ParseError> {
    let ws = words::split_words(rest, escape);
    if ws.is_empty() {
        return Err(missing(line, "ARG", "a name (ARG NAME[=DEFAULT])"));
    }
    ws.into_iter()
        .map(|w| {
            let (name, default) = match w.split_once('=') {
                Some((n, d)) => (n.to_string(), Some(d.to_string())),
                None => (w.clone(), None),
            };
            let ok =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(ParseError::new(line, format!("ARG: invalid name in {w:?}")));
            }
            Ok(ArgDecl { name, default })
        })
        .collect()
}

fn words_or_json(
    inst: &str,
    rest: &str,
    line: usize,
    escape: char,
) -> Result<Vec<String>, ParseError> {
    let v = match words::json_array(rest) {
        Some(v) => v,
        None => words::split_words(rest, escape),
    };
    if v.is_empty() {
        return Err(missing(line, inst, "at least one argument"));
    }
    Ok(v)
}

fn one(inst: &str, rest: &str, line: usize) -> Result<String, ParseError> {
    if rest.is_empty() {
        return Err(missing(line, inst, "an argument"));
    }
    Ok(rest.to_string())
}

fn copy_args(
    inst: &str,
    flags: &Flags,
    rest: &str,
    l: &LogicalLine,
    escape: char,
) -> Result<CopyArgs, ParseError> {
    if inst == "COPY" {
        flags.check(&["from", "chown", "chmod", "link"])?;
    } else {
        flags.check(&["chown", "chmod", "link", "checksum", "keep-git-dir"])?;
    }
    let (mut list, json) = match words::json_array(rest) {
        Some(v) => (v, true),
        None => (words::split_words(rest, escape), false),
    };
    let heredoc_count = if json { 0 } else { l.heredocs.len() };
    if heredoc_count > 0 {
        let markers = words::heredoc_markers(rest, escape);
        let marker_words: Vec<String> = list
            .iter()
            .filter(|w| !words::heredoc_markers(w, escape).is_empty())
            .cloned()
            .collect();
        if markers.len() == heredoc_count {
            list.retain(|w| !marker_words.contains(w));
        }
    }
    let Some(dest) = list.pop() else {
        return Err(missing(l.line, inst, "sources and a destination"));
    };
    if list.is_empty() && heredoc_count == 0 {
        return Err(missing(
            l.line,
            inst,
            "at least one source and a destination",
        ));
    }
    Ok(CopyArgs {
        sources: list,
        dest,
        from: flags.value("from")?,
        chown: flags.value("chown")?,
        chmod: flags.value("chmod")?,
        link: flags.boolean("link")?,
        heredocs: if json { Vec::new() } else { l.heredocs.clone() },
        checksum: flags.value("checksum")?,
        keep_git_dir: flags.boolean("keep-git-dir")?,
    })
}

/// Checks a Go duration (`30s`, `1m30s`, `500ms`): the builder converts it.
fn duration(flags: &Flags, name: &str) -> Result<Option<String>, ParseError> {
    let Some(v) = flags.value(name)? else {
        return Ok(None);
    };
    let bad = || {
        ParseError::new(
            flags.line,
            format!("HEALTHCHECK --{name}={v}: not a duration (like 30s, 1m30s, 500ms)"),
        )
    };
    let mut s = v.as_str();
    if s == "0" {
        return Ok(Some(v.clone()));
    }
    if s.is_empty() {
        return Err(bad());
    }
    while !s.is_empty() {
        let num_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_end == 0 {
            return Err(bad());
        }
        s = &s[num_end..];
        let unit_end = s.find(|c: char| c.is_ascii_digit()).unwrap_or(s.len());
        if !["ns", "us", "µs", "ms", "s", "m", "h"].contains(&&s[..unit_end]) {
            return Err(bad());
        }
        s = &s[unit_end..];
    }
    Ok(Some(v.clone()))
}

fn healthcheck(flags: &Flags, rest: &str, line: usize) -> Result<Health, ParseError> {
    let (kw, cmd) = words::split_first(rest);
    match kw.to_ascii_uppercase().as_str() {
        "NONE" => {
            flags.check(&[])?;
            if !cmd.is_empty() {
                return Err(ParseError::new(line, "HEALTHCHECK NONE takes no arguments"));
            }
            Ok(Health::None)
        }
        "CMD" => {
            flags.check(&[
                "interval",
                "timeout",
                "start-period",
                "start-interval",
                "retries",
            ])?;
            if cmd.is_empty() {
                return Err(missing(line, "HEALTHCHECK CMD", "a command"));
            }
            let retries = match flags.value("retries")? {
                None => None,
                Some(r) => Some(r.parse::<u32>().map_err(|_| {
                    ParseError::new(
                        line,
                        format!("HEALTHCHECK --retries={r}: not a non-negative integer"),
                    )
                })?),
            };
            Ok(Health::Check {
                test: command(cmd),
                interval: duration(flags, "interval")?,
                timeout: duration(flags, "timeout")?,
                start_period: duration(flags, "start-period")?,
                start_interval: duration(flags, "start-interval")?,
                retries,
            })
        }
        "" => Err(missing(line, "HEALTHCHECK", "NONE or CMD")),
        other => Err(ParseError::new(
            line,
            format!("HEALTHCHECK takes NONE or CMD, got {other:?}"),
        )),
    }
}

fn kind(
    inst: &'static str,
    flags: &Flags,
    rest: &str,
    l: &LogicalLine,
    escape: char,
) -> Result<Inst, ParseError> {
    let line = l.line;
    let no_flags = || flags.check(&[]);
    Ok(match inst {
        "ARG" => {
            no_flags()?;
            Inst::Arg(args(rest, line, escape)?)
        }
        "ENV" => {
            no_flags()?;
            Inst::Env(pairs(inst, rest, line, escape)?)
        }
        "LABEL" => {
            no_flags()?;
            Inst::Label(pairs(inst, rest, line, escape)?)
        }
        "WORKDIR" => {
            no_flags()?;
            Inst::Workdir(one(inst, rest, line)?)
        }
        "USER" => {
            no_flags()?;
            Inst::User(one(inst, rest, line)?)
        }
        "STOPSIGNAL" => {
            no_flags()?;
            Inst::StopSignal(one(inst, rest, line)?)
        }
        "MAINTAINER" => {
            no_flags()?;
            Inst::Maintainer(one(inst, rest, line)?)
        }
        "RUN" => {
            flags.check(&["network", "mount"])?;
            if rest.is_empty() && l.heredocs.is_empty() {
                return Err(missing(line, inst, "a command"));
            }
            let command = command(rest);
            let heredocs = match command {
                Command::Shell(_) => l.heredocs.clone(),
                Command::Exec(_) => Vec::new(),
            };
            if let Some(n) = flags.value("network")? {
                if !["none", "default", "host"].contains(&n.as_str()) {
                    return Err(ParseError::new(
                        line,
                        format!("RUN --network={n}: expected none, default or host"),
                    ));
                }
            }
            Inst::Run {
                command,
                network: flags.value("network")?,
                mounts: flags.values("mount")?,
                heredocs,
            }
        }
        "COPY" => Inst::Copy(copy_args(inst, flags, rest, l, escape)?),
        "ADD" => Inst::Add(copy_args(inst, flags, rest, l, escape)?),
        "EXPOSE" => {
            no_flags()?;
            Inst::Expose(words_or_json(inst, rest, line, escape)?)
        }
        "VOLUME" => {
            no_flags()?;
            Inst::Volume(words_or_json(inst, rest, line, escape)?)
        }
        "CMD" | "ENTRYPOINT" => {
            no_flags()?;
            if rest.is_empty() {
                return Err(missing(line, inst, "a command (shell form or JSON array)"));
            }
            if inst == "CMD" {
                Inst::Cmd(command(rest))
            } else {
                Inst::Entrypoint(command(rest))
            }
        }
        "SHELL" => {
            no_flags()?;
            match words::json_array(rest) {
                Some(v) if !v.is_empty() => Inst::Shell(v),
                _ => {
                    return Err(ParseError::new(
                        line,
                        "SHELL requires the arguments to be a JSON array of strings, \
                         like SHELL [\"/bin/sh\", \"-c\"]",
                    ))
                }
            }
        }
        "HEALTHCHECK" => Inst::Healthcheck(healthcheck(flags, rest, line)?),
        "ONBUILD" => {
            no_flags()?;
            if rest.is_empty() {
                return Err(missing(line, inst, "an instruction"));
            }
            let (trigger, _) = words::split_first(rest);
            let t = trigger.to_ascii_uppercase();
            if ["ONBUILD", "FROM", "MAINTAINER"].contains(&t.as_str()) {
                return Err(ParseError::new(
                    line,
                    format!("{t} is not allowed as an ONBUILD trigger"),
                ));
            }
            let inner = LogicalLine {
                line,
                text: rest.to_string(),
                heredocs: Vec::new(),
                heredoc_source: String::new(),
            };
            match parse_line(&inner, escape)? {
                super::instruction::Parsed::Inst(i) => Inst::Onbuild(Box::new(i)),
                super::instruction::Parsed::From { .. } => {
                    return Err(ParseError::new(
                        line,
                        "FROM is not allowed as an ONBUILD trigger",
                    ))
                }
            }
        }
        // FROM is handled by the caller; INSTRUCTIONS lists nothing else.
        other => {
            return Err(ParseError::new(
                line,
                format!("unknown instruction: {other}"),
            ))
        }
    })
}
