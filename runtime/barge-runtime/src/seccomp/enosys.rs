//! ENOSYS for system calls newer than a profile, as runc does.
//!
//! A profile denies what it does not name with its default action, usually `ERRNO(EPERM)`.
//! For a system call the profile's author never heard of (it came with a later kernel:
//! `clone3`, `faccessat2`, `openat2`, `close_range`, `pidfd_*`…), EPERM is the wrong answer:
//! glibc and other libraries fall back to the older call only on ENOSYS ("this kernel doesn't
//! have it"), so under an older profile `pthread_create`, `posix_spawn` or `test -x` fail.
//!
//! So, like runc's "patchbpf", a short BPF prologue goes in front of libseccomp's program: per
//! architecture the filter covers, a system call whose number is above the highest number of
//! any system call the profile names returns ENOSYS; everything else falls through to the
//! profile's own rules. System call numbers stand in for their age (each architecture's table
//! grows at the end); a syscall whose number falls below the highest named one keeps the
//! default action (so naming `faccessat2` makes `close_range`, numbered just below, EPERM again:
//! runc behaves the same).
//!
//! Only when the default action refuses (ERRNO other than ENOSYS, KILL, TRAP): with an allowing
//! default (ALLOW, LOG, TRACE) the newer calls run anyway.
//!
//! Layout (`A` is BPF's accumulator; all jumps forward, each well under 255):
//! ```text
//!        ld  [4]                       ; A = arch
//!  arch: jeq AUDIT_ARCH, 0, next-arch  ; one block per architecture
//!        ld  [0]                       ; A = nr
//!        jgt MAX, enosys, filter       ; (x86_64: jset 0x40000000 first, to pick x32's MAX)
//!        ...
//!        ret ERRNO(ENOSYS)             ; enosys
//!        <libseccomp's program>        ; filter (it loads what it needs itself)
//! ```

use libseccomp::{ScmpArch, ScmpSyscall};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction};

/// `seccomp_data.nr` and `.arch` offsets.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
/// x32 system calls are x86_64 ones with this bit set (`__X32_SYSCALL_BIT`).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// `AUDIT_ARCH_*` of <linux/audit.h> (the `seccomp_data.arch` the kernel reports): the ELF
/// machine with the 64-bit and little-endian flags.
const AUDIT_64: u32 = 0x8000_0000;
const AUDIT_LE: u32 = 0x4000_0000;
const AUDIT_MIPS64_N32: u32 = 0x2000_0000;

/// One instruction, as `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// Where a conditional jump goes, before offsets are known.
#[derive(Debug, Clone, Copy)]
enum To {
    /// The next instruction.
    Next,
    /// The next architecture's block (the filter after the last block).
    NextArch,
    /// This many instructions further into the block.
    Skip(u8),
    Enosys,
    Filter,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Load(u32),
    Jump { code: u16, k: u32, t: To, f: To },
}

/// The highest system call number the profile names, per architecture of the filter.
#[derive(Debug, Default, PartialEq, Eq)]
struct Limits {
    /// (AUDIT_ARCH, highest number) for every architecture but x86_64/x32.
    plain: Vec<(u32, u32)>,
    /// x86_64's and x32's (with the x32 bit); they share AUDIT_ARCH_X86_64.
    x86_64: Option<u32>,
    x32: Option<u32>,
}

/// The prologue for `s` as raw `struct sock_filter` bytes, or `None` when the profile needs
/// none (allowing default action, default ENOSYS, no named system call known here).
pub(super) fn prologue(s: &LinuxSeccomp) -> Option<Vec<u8>> {
    if !refusing_default(s) {
        return None;
    }
    let limits = limits(s);
    let ops = ops(&limits);
    let insns = assemble(&ops)?;
    Some(to_bytes(&insns))
}

/// Whether the default action denies in a way ENOSYS should replace for newer system calls.
fn refusing_default(s: &LinuxSeccomp) -> bool {
    match s.default_action() {
        // A tracer or logger lets the call run; ENOSYS would break working programs.
        LinuxSeccompAction::ScmpActAllow
        | LinuxSeccompAction::ScmpActLog
        | LinuxSeccompAction::ScmpActTrace
        | LinuxSeccompAction::ScmpActNotify => false,
        // Already the answer.
        LinuxSeccompAction::ScmpActErrno => s.default_errno_ret() != Some(libc::ENOSYS as u32),
        LinuxSeccompAction::ScmpActKill
        | LinuxSeccompAction::ScmpActKillThread
        | LinuxSeccompAction::ScmpActKillProcess
        | LinuxSeccompAction::ScmpActTrap => true,
    }
}

/// The filter's architectures: the native one (libseccomp always includes it) and the listed.
fn architectures(s: &LinuxSeccomp) -> Vec<ScmpArch> {
    let mut out = vec![ScmpArch::native()];
    for a in s.architectures().iter().flatten() {
        let a = match scmp_arch(*a) {
            ScmpArch::Native => ScmpArch::native(),
            a => a,
        };
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

fn limits(s: &LinuxSeccomp) -> Limits {
    let names: Vec<&str> = s
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|c| c.names().iter().map(String::as_str))
        .collect();
    let mut out = Limits::default();
    for arch in architectures(s) {
        let Some(audit) = audit_arch(arch) else {
            tracing::debug!("seccomp: no ENOSYS prologue for {arch:?} (unknown AUDIT_ARCH)");
            continue;
        };
        let max = names
            .iter()
            .filter_map(|n| ScmpSyscall::from_name_by_arch(n, arch).ok())
            // Negative numbers are libseccomp's pseudo-syscalls: not on this architecture.
            .filter_map(|nr| u32::try_from(i32::from(nr)).ok())
            .map(|nr| match arch {
                ScmpArch::X32 => nr | X32_SYSCALL_BIT,
                _ => nr,
            })
            .max();
        let Some(max) = max else {
            continue; // nothing named: every call takes the profile's default
        };
        match arch {
            ScmpArch::X8664 => out.x86_64 = Some(max),
            ScmpArch::X32 => out.x32 = Some(max),
            _ => out.plain.push((audit, max)),
        }
    }
    out
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGT: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

fn jump(code: u16, k: u32, t: To, f: To) -> Op {
    Op::Jump { code, k, t, f }
}

/// The prologue's blocks, one per architecture, with symbolic jumps.
fn ops(l: &Limits) -> Vec<Vec<Op>> {
    let mut blocks = Vec::new();
    for (audit, max) in &l.plain {
        let mut b = vec![
            jump(JEQ, *audit, To::Next, To::NextArch),
            Op::Load(NR_OFFSET),
        ];
        if *audit == audit_arch(ScmpArch::S390X).unwrap_or(0)
            || *audit == audit_arch(ScmpArch::S390).unwrap_or(0)
        {
            // s390 multiplexes numbers above its table through 0 (the long-gone setup(2)):
            // a call this kernel does not know arrives as 0.
            b.push(jump(JEQ, 0, To::Enosys, To::Next));
        }
        b.push(jump(JGT, *max, To::Enosys, To::Filter));
        blocks.push(b);
    }
    if l.x86_64.is_some() || l.x32.is_some() {
        let x86 = audit_arch(ScmpArch::X8664).unwrap_or(0);
        let mut b = vec![jump(JEQ, x86, To::Next, To::NextArch), Op::Load(NR_OFFSET)];
        // x32 calls carry the bit; whichever ABI the profile does not cover goes straight to
        // libseccomp's program (which refuses it as it always did).
        let (t, f) = match (l.x86_64, l.x32) {
            (Some(_), Some(_)) => (To::Skip(1), To::Next),
            (Some(_), None) => (To::Filter, To::Next),
            _ => (To::Next, To::Filter),
        };
        b.push(jump(JSET, X32_SYSCALL_BIT, t, f));
        if let Some(m) = l.x86_64 {
            b.push(jump(JGT, m, To::Enosys, To::Filter));
        }
        if let Some(m) = l.x32 {
            b.push(jump(JGT, m, To::Enosys, To::Filter));
        }
        blocks.push(b);
    }
    blocks
}

/// Resolve the jumps: `None` if there is nothing to do or an offset would not fit (never for
/// the handful of architectures a filter has).
fn assemble(blocks: &[Vec<Op>]) -> Option<Vec<Insn>> {
    if blocks.is_empty() {
        return None;
    }
    let body: usize = blocks.iter().map(Vec::len).sum();
    // ld [4], the blocks, ret ENOSYS; the filter follows.
    let enosys = 1 + body;
    let filter = enosys + 1;
    let mut out = vec![Insn {
        code: LD_W_ABS,
        jt: 0,
        jf: 0,
        k: ARCH_OFFSET,
    }];
    for (i, b) in blocks.iter().enumerate() {
        // After the last block, no architecture matched: the filter decides.
        let next_arch = if i + 1 == blocks.len() {
            filter
        } else {
            out.len() + b.len()
        };
        for op in b {
            let pc = out.len();
            let off = |to: To| -> Option<u8> {
                let target = match to {
                    To::Next => pc + 1,
                    To::NextArch => next_arch,
                    To::Skip(n) => pc + 1 + usize::from(n),
                    To::Enosys => enosys,
                    To::Filter => filter,
                };
                u8::try_from(target.checked_sub(pc + 1)?).ok()
            };
            out.push(match *op {
                Op::Load(k) => Insn {
                    code: LD_W_ABS,
                    jt: 0,
                    jf: 0,
                    k,
                },
                Op::Jump { code, k, t, f } => Insn {
                    code,
                    jt: off(t)?,
                    jf: off(f)?,
                    k,
                },
            });
        }
    }
    out.push(ret_enosys());
    debug_assert_eq!(out.len(), filter);
    Some(out)
}

fn ret_enosys() -> Insn {
    Insn {
        code: RET_K,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
    }
}

fn to_bytes(insns: &[Insn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(insns.len() * crate::sys::SOCK_FILTER_SIZE);
    for i in insns {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

/// The kernel's `AUDIT_ARCH_*` for a libseccomp architecture (x32 reports x86_64's).
fn audit_arch(a: ScmpArch) -> Option<u32> {
    // ELF machine numbers (<linux/elf-em.h>).
    const EM_386: u32 = 3;
    const EM_68K: u32 = 4;
    const EM_MIPS: u32 = 8;
    const EM_PARISC: u32 = 15;
    const EM_PPC: u32 = 20;
    const EM_PPC64: u32 = 21;
    const EM_S390: u32 = 22;
    const EM_ARM: u32 = 40;
    const EM_SH: u32 = 42;
    const EM_X86_64: u32 = 62;
    const EM_AARCH64: u32 = 183;
    const EM_RISCV: u32 = 243;
    const EM_LOONGARCH: u32 = 258;
    Some(match a {
        ScmpArch::X86 => EM_386 | AUDIT_LE,
        ScmpArch::X8664 | ScmpArch::X32 => EM_X86_64 | AUDIT_64 | AUDIT_LE,
        ScmpArch::Arm => EM_ARM | AUDIT_LE,
        ScmpArch::Aarch64 => EM_AARCH64 | AUDIT_64 | AUDIT_LE,
        ScmpArch::Loongarch64 => EM_LOONGARCH | AUDIT_64 | AUDIT_LE,
        ScmpArch::M68k => EM_68K,
        ScmpArch::Mips => EM_MIPS,
        ScmpArch::Mipsel => EM_MIPS | AUDIT_LE,
        ScmpArch::Mips64 => EM_MIPS | AUDIT_64,
        ScmpArch::Mipsel64 => EM_MIPS | AUDIT_64 | AUDIT_LE,
        ScmpArch::Mips64N32 => EM_MIPS | AUDIT_64 | AUDIT_MIPS64_N32,
        ScmpArch::Mipsel64N32 => EM_MIPS | AUDIT_64 | AUDIT_LE | AUDIT_MIPS64_N32,
        ScmpArch::Parisc => EM_PARISC,
        ScmpArch::Parisc64 => EM_PARISC | AUDIT_64,
        ScmpArch::Ppc => EM_PPC,
        ScmpArch::Ppc64 => EM_PPC64 | AUDIT_64,
        ScmpArch::Ppc64Le => EM_PPC64 | AUDIT_64 | AUDIT_LE,
        ScmpArch::Riscv64 => EM_RISCV | AUDIT_64 | AUDIT_LE,
        ScmpArch::S390 => EM_S390,
        ScmpArch::S390X => EM_S390 | AUDIT_64,
        ScmpArch::Sh => EM_SH | AUDIT_LE,
        ScmpArch::Sheb => EM_SH,
        _ => return None,
    })
}

fn scmp_arch(a: Arch) -> ScmpArch {
    super::compile::scmp_arch(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn audit_arch_values_match_libseccomp() {
        // libseccomp's SCMP_ARCH_* are the AUDIT_ARCH_* values (x32 aside).
        assert_eq!(audit_arch(ScmpArch::X8664), Some(0xc000_003e));
        assert_eq!(audit_arch(ScmpArch::X86), Some(0x4000_0003));
        assert_eq!(audit_arch(ScmpArch::Aarch64), Some(0xc000_00b7));
        assert_eq!(audit_arch(ScmpArch::Arm), Some(0x4000_0028));
        assert_eq!(audit_arch(ScmpArch::Riscv64), Some(0xc000_00f3));
        assert_eq!(audit_arch(ScmpArch::Mipsel64N32), Some(0xe000_0008));
    }

    #[test]
    fn no_prologue_for_allowing_or_enosys_defaults() {
        for (action, errno) in [
            ("SCMP_ACT_ALLOW", None),
            ("SCMP_ACT_LOG", None),
            ("SCMP_ACT_TRACE", None),
            ("SCMP_ACT_ERRNO", Some(libc::ENOSYS)),
        ] {
            let mut v = serde_json::json!({"defaultAction": action,
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]});
            if let Some(e) = errno {
                v["defaultErrnoRet"] = e.into();
            }
            assert!(prologue(&profile(v)).is_none(), "{action} {errno:?}");
        }
        for action in [
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_TRAP",
        ] {
            let v = serde_json::json!({"defaultAction": action,
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]});
            assert!(prologue(&profile(v)).is_some(), "{action}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn limits_are_the_highest_named_per_architecture() {
        let l = limits(&profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["read", "statx", "nosuchcall", "arch_prctl"],
                          "action": "SCMP_ACT_ALLOW"}]}),
        ));
        assert_eq!(l.x86_64, Some(332), "statx on x86_64");
        assert_eq!(l.x32, Some(332 | X32_SYSCALL_BIT), "statx on x32");
        assert_eq!(l.plain, vec![(0x4000_0003, 384)], "arch_prctl on i386");
    }

    #[test]
    fn a_missed_architecture_falls_through_to_the_filter() {
        // i386 then x86_64 without x32: every "not this arch" and every verdict lands on the
        // ENOSYS return or right after it (the filter), never elsewhere.
        let l = Limits {
            plain: vec![(0x4000_0003, 384)],
            x86_64: Some(332),
            x32: None,
        };
        let insns = assemble(&ops(&l)).unwrap();
        let k: Vec<_> = insns.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect();
        assert_eq!(
            k,
            vec![
                (LD_W_ABS, 0, 0, ARCH_OFFSET),
                (JEQ, 0, 2, 0x4000_0003),
                (LD_W_ABS, 0, 0, NR_OFFSET),
                (JGT, 4, 5, 384),
                (JEQ, 0, 4, 0xc000_003e),
                (LD_W_ABS, 0, 0, NR_OFFSET),
                (JSET, 2, 0, X32_SYSCALL_BIT),
                (JGT, 0, 1, 332),
                (RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
            ]
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_64_prologue_layout() {
        let l = Limits {
            plain: vec![],
            x86_64: Some(332),
            x32: Some(332 | X32_SYSCALL_BIT),
        };
        let insns = assemble(&ops(&l)).unwrap();
        let k: Vec<_> = insns.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect();
        assert_eq!(
            k,
            vec![
                (LD_W_ABS, 0, 0, ARCH_OFFSET),
                (JEQ, 0, 5, 0xc000_003e),
                (LD_W_ABS, 0, 0, NR_OFFSET),
                (JSET, 1, 0, X32_SYSCALL_BIT),
                (JGT, 1, 2, 332),
                (JGT, 0, 1, 332 | X32_SYSCALL_BIT),
                (RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
            ]
        );
    }
}
