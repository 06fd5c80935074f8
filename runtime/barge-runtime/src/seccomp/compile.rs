//! `linux.seccomp` compiled into a libseccomp filter context, and loading it.

use libseccomp::error::SeccompError;
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

use crate::error::{Error, Result};

/// The largest `SECCOMP_RET_ERRNO` value libseccomp accepts (below the kernel's MAX_ERRNO,
/// 4095, to which the kernel would clamp larger ones).
const MAX_ERRNO: u32 = 4094;
/// A system call has at most six arguments (indexes 0 to 5).
const MAX_ARGS: usize = 6;
/// libseccomp API level with `SCMP_ACT_NOTIFY` (libseccomp ≥ 2.5, Linux ≥ 5.0).
const NOTIFY_API_LEVEL: u32 = 6;
/// Enough rules to make libseccomp's binary-tree layout (optimize level 2) pay off (runc's
/// threshold).
const BINARY_TREE_MIN_RULES: usize = 32;
/// System calls that may not be `SCMP_ACT_NOTIFY`: the init makes them after loading the filter
/// to hand the listener fd to the runtime (`sendmsg` carries the fd; runc refuses `write` for
/// the same reason). Notifying them would block the init before any agent has the listener.
const NOTIFY_REFUSED: &[&str] = &["write", "sendmsg"];

/// A filter compiled from `linux.seccomp`, ready to load in the container's init.
///
/// Compile it in the runtime process before forking: a bad profile then fails `create` before
/// anything exists, and the forked init inherits the compiled rules.
#[derive(Debug)]
pub struct Filter {
    ctx: ScmpFilterContext,
    notify: bool,
}

impl Filter {
    /// Compile `linux.seccomp`. Errors are [`Error::Config`] naming the field
    /// (`linux.seccomp.syscalls[3].args[0].index: ...`). System call names this libseccomp or
    /// architecture does not know are skipped (logged at debug level), as are rules whose
    /// action is the default action.
    pub fn compile(s: &LinuxSeccomp) -> Result<Filter> {
        let default = action(s.default_action(), s.default_errno_ret(), || {
            "linux.seccomp.defaultErrnoRet".into()
        })?;
        if default == ScmpAction::Notify {
            return Err(config(
                "linux.seccomp.defaultAction",
                "SCMP_ACT_NOTIFY cannot be the default action: the init's own system calls \
                 would wait for an agent that has not received the listener yet",
            ));
        }
        let mut ctx = ScmpFilterContext::new(default).map_err(|e| {
            config(
                "linux.seccomp.defaultAction",
                format!("{}: libseccomp refused it: {e}", s.default_action()),
            )
        })?;
        // `no_new_privs` is `process.noNewPrivileges`' business, not the filter's (as runc).
        ctx.set_ctl_nnp(false)
            .map_err(|e| lib_error("clear the filter's no_new_privs attribute", e))?;
        // Report the kernel's errno if loading fails, not libseccomp's generic ECANCELED.
        if let Err(e) = ctx.set_api_sysrawrc(true) {
            tracing::debug!("seccomp: raw load errors unavailable: {e}");
        }
        for (i, arch) in s.architectures().iter().flatten().enumerate() {
            ctx.add_arch(scmp_arch(*arch)).map_err(|e| {
                config(
                    format!("linux.seccomp.architectures[{i}]"),
                    format!("{arch}: not supported by libseccomp {}: {e}", lib_version()),
                )
            })?;
        }
        for (i, flag) in s.flags().iter().flatten().enumerate() {
            set_flag(&mut ctx, *flag)
                .map_err(|e| config(format!("linux.seccomp.flags[{i}]"), format!("{flag}: {e}")))?;
        }
        let syscalls = s.syscalls().as_deref().unwrap_or_default();
        let rules: usize = syscalls.iter().map(|c| c.names().len()).sum();
        if rules > BINARY_TREE_MIN_RULES {
            if let Err(e) = ctx.set_ctl_optimize(2) {
                tracing::debug!("seccomp: binary tree optimization unavailable: {e}");
            }
        }
        let mut notify = false;
        for (i, call) in syscalls.iter().enumerate() {
            notify |= add_syscall(&mut ctx, i, call, default)?;
        }
        Ok(Filter { ctx, notify })
    }

    /// Whether a rule is `SCMP_ACT_NOTIFY` (the default action cannot be).
    pub fn uses_notify(&self) -> bool {
        self.notify
    }

    /// The BPF program libseccomp generates for this filter, as raw `struct sock_filter`
    /// bytes (what [`super::Program::load`] installs).
    pub fn bpf(&self) -> Result<Vec<u8>> {
        use std::io::{Read, Seek};
        use std::os::unix::fs::OpenOptionsExt;
        // An anonymous file: libseccomp writes to an fd.
        let open = |dir: &str| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_TMPFILE)
                .open(dir)
        };
        let mut f = open("/dev/shm")
            .or_else(|_| open("/tmp"))
            .map_err(|e| Error::Io {
                context: "create a temporary file for the seccomp program".into(),
                source: e,
            })?;
        self.ctx
            .export_bpf(&f)
            .map_err(|e| lib_error("generate the seccomp BPF program", e))?;
        let mut bpf = Vec::new();
        f.rewind()
            .and_then(|_| f.read_to_end(&mut bpf))
            .map_err(|e| Error::Io {
                context: "read the seccomp BPF program".into(),
                source: e,
            })?;
        Ok(bpf)
    }

    /// The filter in libseccomp's pseudo-filter-code text form (tests and debugging).
    #[cfg(test)]
    pub(crate) fn pfc(&self) -> String {
        let mut f = match tempfile::tempfile() {
            Ok(f) => f,
            Err(e) => return format!("tempfile: {e}"),
        };
        if let Err(e) = self.ctx.export_pfc(&f) {
            return format!("export_pfc: {e}");
        }
        use std::io::{Read, Seek};
        let mut s = String::new();
        match f.rewind().and_then(|_| f.read_to_string(&mut s)) {
            Ok(_) => s,
            Err(e) => format!("read pfc: {e}"),
        }
    }

    /// The filter's (log, spec-allow) attributes, as the flags set them (tests).
    #[cfg(test)]
    pub(crate) fn ctx_attrs(&self) -> (bool, bool) {
        (
            self.ctx.get_ctl_log().unwrap_or(false),
            self.ctx.get_ctl_ssb().unwrap_or(false),
        )
    }

    /// Generate the BPF program without loading it (what `load` costs, for measurements).
    #[cfg(test)]
    pub(crate) fn bpf_len(&self) -> Result<u64> {
        let f = tempfile::tempfile().map_err(|e| Error::Io {
            context: "tempfile".into(),
            source: e,
        })?;
        self.ctx
            .export_bpf(&f)
            .map_err(|e| lib_error("export bpf", e))?;
        f.metadata().map(|m| m.len()).map_err(|e| Error::Io {
            context: "stat bpf".into(),
            source: e,
        })
    }
}

/// Add the rules of `linux.seccomp.syscalls[i]`; returns whether a NOTIFY rule was added.
fn add_syscall(
    ctx: &mut ScmpFilterContext,
    i: usize,
    call: &LinuxSyscall,
    default: ScmpAction,
) -> Result<bool> {
    let act = action(call.action(), call.errno_ret(), || {
        format!("linux.seccomp.syscalls[{i}].errnoRet")
    })?;
    let names = call.names();
    if names.is_empty() {
        return Err(config(
            format!("linux.seccomp.syscalls[{i}].names"),
            "must name at least one system call",
        ));
    }
    for (j, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(config(
                format!("linux.seccomp.syscalls[{i}].names[{j}]"),
                "empty system call name",
            ));
        }
        if act == ScmpAction::Notify && NOTIFY_REFUSED.contains(&name.as_str()) {
            return Err(config(
                format!("linux.seccomp.syscalls[{i}].names[{j}]"),
                format!(
                    "SCMP_ACT_NOTIFY cannot be used for {name:?}: the init uses it to hand the \
                     listener to the runtime"
                ),
            ));
        }
    }
    let conds = conditions(i, call.args().as_deref().unwrap_or_default())?;
    if act == default {
        // libseccomp refuses a rule with the default action; it would change nothing anyway.
        tracing::debug!("seccomp: linux.seccomp.syscalls[{i}] has the default action, skipped");
        return Ok(false);
    }
    if act == ScmpAction::Notify && libseccomp::get_api() < NOTIFY_API_LEVEL {
        return Err(config(
            format!("linux.seccomp.syscalls[{i}].action"),
            format!(
                "SCMP_ACT_NOTIFY needs libseccomp >= 2.5 and Linux >= 5.0 (API level {}; have \
                 libseccomp {} at API level {})",
                NOTIFY_API_LEVEL,
                lib_version(),
                libseccomp::get_api()
            ),
        ));
    }
    // As runc: conditions on distinct arguments are ANDed in one rule, but libseccomp cannot
    // compare one argument twice in a rule, so if any index repeats, each condition becomes a
    // rule of its own (the conditions are then ORed).
    let split = conds.len() > 1 && repeats_index(call.args().as_deref().unwrap_or_default());
    let mut added = false;
    for (j, name) in names.iter().enumerate() {
        let Ok(nr) = ScmpSyscall::from_name(name) else {
            tracing::debug!(
                "seccomp: unknown system call {name:?} (linux.seccomp.syscalls[{i}].names[{j}]) \
                 skipped"
            );
            continue;
        };
        let r = if split {
            conds.iter().try_for_each(|c| {
                ctx.add_rule_conditional(act, nr, std::slice::from_ref(c))
                    .map(drop)
            })
        } else {
            ctx.add_rule_conditional(act, nr, &conds).map(drop)
        };
        r.map_err(|e| {
            config(
                format!("linux.seccomp.syscalls[{i}].names[{j}]"),
                format!(
                    "{name} ({}): libseccomp refused the rule: {e}",
                    call.action()
                ),
            )
        })?;
        added = true;
    }
    Ok(added && act == ScmpAction::Notify)
}

/// The argument conditions of `linux.seccomp.syscalls[i]`.
fn conditions(i: usize, args: &[LinuxSeccompArg]) -> Result<Vec<ScmpArgCompare>> {
    let mut out = Vec::with_capacity(args.len());
    for (j, a) in args.iter().enumerate() {
        let index = a.index();
        let arg = u32::try_from(index)
            .ok()
            .filter(|_| index < MAX_ARGS)
            .ok_or_else(|| {
                config(
                    format!("linux.seccomp.syscalls[{i}].args[{j}].index"),
                    format!("{index} is out of range: system call arguments are 0 to 5"),
                )
            })?;
        let (op, datum) = match a.op() {
            LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, a.value()),
            LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, a.value()),
            LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, a.value()),
            LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, a.value()),
            LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, a.value()),
            LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, a.value()),
            // (arg & value) == valueTwo; a missing valueTwo is 0 (as runc and Docker's profile).
            LinuxSeccompOperator::ScmpCmpMaskedEq => (
                ScmpCompareOp::MaskedEqual(a.value()),
                a.value_two().unwrap_or(0),
            ),
        };
        out.push(ScmpArgCompare::new(arg, op, datum));
    }
    Ok(out)
}

/// Whether two conditions compare the same argument.
fn repeats_index(args: &[LinuxSeccompArg]) -> bool {
    let mut seen = [false; MAX_ARGS];
    args.iter().any(|a| {
        let slot = &mut seen[a.index().min(MAX_ARGS - 1)];
        std::mem::replace(slot, true)
    })
}

/// An OCI action (and its `errnoRet`) as a libseccomp action. `errno_field` names the errnoRet
/// field for errors.
fn action(
    a: LinuxSeccompAction,
    errno_ret: Option<u32>,
    errno_field: impl Fn() -> String,
) -> Result<ScmpAction> {
    let eperm = libc::EPERM as u32;
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            let errno = errno_ret.unwrap_or(eperm);
            if errno > MAX_ERRNO {
                // Refused here, naming the field, rather than by libseccomp.
                return Err(config(
                    errno_field(),
                    format!("{errno} is not an errno (at most {MAX_ERRNO})"),
                ));
            }
            ScmpAction::Errno(errno as i32)
        }
        LinuxSeccompAction::ScmpActTrace => {
            let msg = errno_ret.unwrap_or(eperm);
            let msg = u16::try_from(msg).map_err(|_| {
                config(
                    errno_field(),
                    format!("{msg} does not fit SCMP_ACT_TRACE's 16-bit message"),
                )
            })?;
            ScmpAction::Trace(msg)
        }
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    })
}

/// Set the filter attribute behind a `linux.seccomp.flags` entry.
fn set_flag(
    ctx: &mut ScmpFilterContext,
    flag: LinuxSeccompFilterFlag,
) -> std::result::Result<(), SeccompError> {
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true).map(drop),
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true).map(drop),
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
            ctx.set_ctl_waitkill(true).map(drop)
        }
        // The init is single-threaded when it loads the filter: nothing to synchronize (runc
        // ignores the flag too).
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => Ok(()),
    }
}

/// The libseccomp architecture for an OCI one.
pub(super) fn scmp_arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// The linked libseccomp's version, for messages.
pub(crate) fn lib_version() -> String {
    libseccomp::ScmpVersion::current()
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "(unknown version)".into())
}

fn config(field: impl std::fmt::Display, msg: impl std::fmt::Display) -> Error {
    Error::Config(format!("{field}: {msg}"))
}

/// A libseccomp failure outside compiling rules: the kernel's errno if libseccomp passed it on.
fn lib_error(what: &str, e: SeccompError) -> Error {
    match e.sysrawrc() {
        Some(rc) if rc < 0 => Error::Sys {
            context: what.into(),
            source: nix::errno::Errno::from_raw(-rc),
        },
        _ => Error::Container(format!("{what}: {e}")),
    }
}
