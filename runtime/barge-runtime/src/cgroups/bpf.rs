//! cgroup v2 device control: an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program built from the rules.
//!
//! cgroup v2 has no `devices.allow`/`devices.deny` files. Instead, on every open or mknod of a
//! device node the kernel runs the device programs attached to the task's cgroup and its
//! ancestors, and allows the access only if all of them return 1. Like runc and crun, we generate
//! that program ourselves (a few instruction kinds, no maps, no helpers), so no eBPF library is
//! needed; loading and attaching go through the bpf(2) wrappers of `sys`.
//!
//! The program reads the request from `struct bpf_cgroup_dev_ctx` (access and type, major,
//! minor), then tests the rules after the last reset rule from the last to the first: the first
//! rule matching returns its verdict, which is "the last matching rule decides" of the v1
//! controller. If none matches it returns the reset rule's verdict (deny without one).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use super::devices::{Kind, Rule, ACC_ALL};
use crate::error::{at, Context, Result};
use crate::sys::{self, BpfInsn};

/// `BPF_PROG_TYPE_CGROUP_DEVICE`.
const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// The `BPF_CGROUP_DEVICE` attach type.
const ATTACH_CGROUP_DEVICE: u32 = 6;
/// `BPF_F_ALLOW_MULTI`: other programs may stay attached (all must allow), which lets the new
/// program go in before the old ones come out, so no access slips through in between.
const F_ALLOW_MULTI: u32 = 2;
/// The program uses no GPL-only helpers, so any license string is accepted.
const LICENSE: &std::ffi::CStr = c"Apache";
/// Room for the verifier log when a load fails. A log that doesn't fit is cut short (the
/// kernel keeps its end, where the error is).
const LOG_SIZE: usize = 256 * 1024;

// Instruction encoding (linux/bpf.h): class | operation | source.
const CLASS_LDX: u8 = 0x01;
const CLASS_ALU: u8 = 0x04; // 32-bit ALU
const CLASS_JMP: u8 = 0x05;
const CLASS_JMP32: u8 = 0x06; // compares the low 32 bits (Linux 5.1+)
const CLASS_ALU64: u8 = 0x07;
const CLASS_MASK: u8 = 0x07;
const SIZE_W: u8 = 0x00;
const MODE_MEM: u8 = 0x60;
const SRC_K: u8 = 0x00; // immediate operand
const SRC_X: u8 = 0x08; // register operand
const OP_AND: u8 = 0x50;
const OP_RSH: u8 = 0x70;
const OP_MOV: u8 = 0xb0;
const OP_JEQ: u8 = 0x10;
const OP_JNE: u8 = 0x50;
const OP_EXIT: u8 = 0x90;

// Registers: r0 is the verdict, r1 the context and then scratch; r2..r5 hold the request.
const R0: u8 = 0;
const R_CTX: u8 = 1;
const R_TMP: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

// `struct bpf_cgroup_dev_ctx { u32 access_type /* access << 16 | type */; u32 major; u32 minor; }`.
const CTX_ACCESS_TYPE: i16 = 0;
const CTX_MAJOR: i16 = 4;
const CTX_MINOR: i16 = 8;
// `BPF_DEVCG_DEV_BLOCK` and `BPF_DEVCG_DEV_CHAR`, the type in `access_type`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// Load a device program for `rules` and attach it to the cgroup directory `dir`, replacing
/// the programs attached there before (so calling it again leaves exactly one program).
///
/// If detaching an old program fails, both stay attached: access is then what both allow.
pub fn attach(dir: &Path, rules: &[Rule]) -> Result<()> {
    let cgroup = open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| at("open cgroup", dir))?;
    let old = sys::bpf_prog_query(cgroup.as_fd(), ATTACH_CGROUP_DEVICE)
        .ctx(|| at("query the device programs of cgroup", dir))?;
    let prog = load(dir, &program(rules))?;
    sys::bpf_prog_attach(
        cgroup.as_fd(),
        prog.as_fd(),
        ATTACH_CGROUP_DEVICE,
        F_ALLOW_MULTI,
    )
    .ctx(|| at("attach the device program to cgroup", dir))?;
    for id in old {
        let what = || format!("detach device program {id} from cgroup {}", dir.display());
        // ENOENT from either call: it went away since the query, as we wanted.
        let old_prog = match sys::bpf_prog_get_fd_by_id(id) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(e).ctx(what),
        };
        match sys::bpf_prog_detach(cgroup.as_fd(), old_prog.as_fd(), ATTACH_CGROUP_DEVICE) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e).ctx(what),
        }
    }
    Ok(())
}

/// Load `insns` as a device program. When the kernel refuses it, load it again with a log
/// buffer (only then: logging slows the verifier) so the error carries the verifier's reasons.
fn load(dir: &Path, insns: &[BpfInsn]) -> Result<OwnedFd> {
    let err = match sys::bpf_prog_load(PROG_TYPE_CGROUP_DEVICE, insns, LICENSE, &mut []) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let mut log = vec![0u8; LOG_SIZE];
    if let Ok(fd) = sys::bpf_prog_load(PROG_TYPE_CGROUP_DEVICE, insns, LICENSE, &mut log) {
        return Ok(fd);
    }
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let log = String::from_utf8_lossy(&log[..end]);
    // The first error is the true one: a cut-short log turns the second into ENOSPC.
    Err(err).ctx(|| {
        format!(
            "load the device eBPF program ({} instructions) for cgroup {} (verifier log: {})",
            insns.len(),
            dir.display(),
            log.trim()
        )
    })
}

/// The device program for `rules`: a prologue loading the request into registers, one block
/// per rule after the last reset (last rule first), then the default verdict.
fn program(rules: &[Rule]) -> Vec<BpfInsn> {
    let (default, active) = match rules.iter().rposition(Rule::is_reset) {
        Some(i) => (rules[i].allow, &rules[i + 1..]),
        None => (false, rules),
    };
    let mut prog = vec![
        load_ctx(R_TYPE, CTX_ACCESS_TYPE),
        alu32_imm(OP_AND, R_TYPE, 0xffff),
        load_ctx(R_ACCESS, CTX_ACCESS_TYPE),
        alu32_imm(OP_RSH, R_ACCESS, 16),
        load_ctx(R_MAJOR, CTX_MAJOR),
        load_ctx(R_MINOR, CTX_MINOR),
    ];
    for rule in active.iter().rev() {
        prog.extend(block(rule));
    }
    prog.extend(verdict(default));
    prog
}

/// The tests of one rule, each jumping past the block when the request doesn't match, then the
/// rule's verdict.
///
/// Only a reset rule would have no test at all (and make everything after it unreachable, which
/// the verifier refuses); `program` never emits one.
fn block(rule: &Rule) -> Vec<BpfInsn> {
    let mut insns = Vec::new();
    match rule.kind {
        Kind::All => {}
        Kind::Char => insns.push(jmp32_imm(OP_JNE, R_TYPE, DEV_CHAR)),
        Kind::Block => insns.push(jmp32_imm(OP_JNE, R_TYPE, DEV_BLOCK)),
    }
    // JMP32 compares 32 bits, so the u32's bit pattern in the i32 immediate is what counts.
    if let Some(major) = rule.major {
        insns.push(jmp32_imm(OP_JNE, R_MAJOR, major as i32));
    }
    if let Some(minor) = rule.minor {
        insns.push(jmp32_imm(OP_JNE, R_MINOR, minor as i32));
    }
    // An allow rule covers requests whose access bits are all in the rule's (always true for
    // rwm); a deny rule catches requests sharing any bit with it.
    if !(rule.allow && rule.access == ACC_ALL) {
        insns.push(mov32_reg(R_TMP, R_ACCESS));
        insns.push(alu32_imm(OP_AND, R_TMP, rule.access.into()));
        insns.push(if rule.allow {
            jmp32_reg(OP_JNE, R_TMP, R_ACCESS)
        } else {
            jmp32_imm(OP_JEQ, R_TMP, 0)
        });
    }
    insns.extend(verdict(rule.allow));
    // Every conditional jump of the block skips to its end: patch the offsets in.
    let end = insns.len();
    for (i, insn) in insns.iter_mut().enumerate() {
        if insn.code & CLASS_MASK == CLASS_JMP32 {
            insn.off = (end - i - 1) as i16;
        }
    }
    insns
}

/// `r0 = allow; exit`.
fn verdict(allow: bool) -> [BpfInsn; 2] {
    [
        BpfInsn::new(CLASS_ALU64 | OP_MOV | SRC_K, R0, 0, 0, allow.into()),
        BpfInsn::new(CLASS_JMP | OP_EXIT, 0, 0, 0, 0),
    ]
}

/// `dst = *(u32 *)(ctx + off)`.
fn load_ctx(dst: u8, off: i16) -> BpfInsn {
    BpfInsn::new(CLASS_LDX | SIZE_W | MODE_MEM, dst, R_CTX, off, 0)
}

/// `dst = (u32)dst <op> imm`.
fn alu32_imm(op: u8, dst: u8, imm: i32) -> BpfInsn {
    BpfInsn::new(CLASS_ALU | op | SRC_K, dst, 0, 0, imm)
}

/// `dst = (u32)src`.
fn mov32_reg(dst: u8, src: u8) -> BpfInsn {
    BpfInsn::new(CLASS_ALU | OP_MOV | SRC_X, dst, src, 0, 0)
}

/// `if (u32)dst <op> imm goto +off`; `block` fills in the offset.
fn jmp32_imm(op: u8, dst: u8, imm: i32) -> BpfInsn {
    BpfInsn::new(CLASS_JMP32 | op | SRC_K, dst, 0, 0, imm)
}

/// `if (u32)dst <op> (u32)src goto +off`; `block` fills in the offset.
fn jmp32_reg(op: u8, dst: u8, src: u8) -> BpfInsn {
    BpfInsn::new(CLASS_JMP32 | op | SRC_X, dst, src, 0, 0)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;
    use std::process::Command;

    use super::*;
    use crate::cgroups::devices::{self, ACC_MKNOD, ACC_READ, ACC_WRITE};

    /// `[access_type, major, minor]`, as in `struct bpf_cgroup_dev_ctx`.
    type Ctx = [u32; 3];

    /// Run `prog` on `ctx` with exactly the instructions `program` emits (decoded from their
    /// kernel encoding, so a wrong opcode constant fails here), checking what the verifier
    /// would: forward jumps only, context reads through the untouched r1, r0 set to 0 or 1.
    fn run(prog: &[BpfInsn], ctx: Ctx) -> bool {
        let mut reg = [u64::MAX; 11];
        let mut r1_is_ctx = true;
        let mut pc = 0;
        loop {
            let insn = prog[pc];
            let (dst, src) = insn.regs();
            let (d, s) = (usize::from(dst), usize::from(src));
            let (imm, off) = (insn.imm as u32, insn.off);
            assert!(off >= 0, "backward jump at {pc}");
            let skip = off as usize;
            pc += 1;
            match insn.code {
                0x61 => {
                    assert!(s == 1 && r1_is_ctx, "load from r{s}, not the context");
                    assert!(
                        off % 4 == 0 && (0..12).contains(&off),
                        "context offset {off}"
                    );
                    reg[d] = u64::from(ctx[off as usize / 4]);
                }
                0x54 => reg[d] = u64::from(reg[d] as u32 & imm),
                0x74 => reg[d] = u64::from((reg[d] as u32) >> imm),
                0xbc => reg[d] = u64::from(reg[s] as u32),
                0xb7 => reg[d] = i64::from(insn.imm) as u64,
                0x56 if reg[d] as u32 != imm => pc += skip,
                0x5e if reg[d] as u32 != reg[s] as u32 => pc += skip,
                0x16 if reg[d] as u32 == imm => pc += skip,
                0x56 | 0x5e | 0x16 => {}
                0x95 => match reg[0] {
                    0 => return false,
                    1 => return true,
                    r0 => panic!("exit with r0 = {r0:#x}"),
                },
                code => panic!("unexpected opcode {code:#04x} at {}", pc - 1),
            }
            // Jumps and exit only read registers; everything else writes `dst`.
            if d == 1 && !matches!(insn.code, 0x56 | 0x5e | 0x16 | 0x95) {
                r1_is_ctx = false;
            }
        }
    }

    /// A rule in the v1 syntax, prefixed with allow/deny: `"allow c 1:3 rwm"`.
    fn rule(s: &str) -> Rule {
        let f: Vec<&str> = s.split(' ').collect();
        let (major, minor) = f[2].split_once(':').unwrap();
        let num = |n: &str| (n != "*").then(|| n.parse().unwrap());
        Rule {
            allow: f[0] == "allow",
            kind: match f[1] {
                "a" => Kind::All,
                "c" => Kind::Char,
                _ => Kind::Block,
            },
            major: num(major),
            minor: num(minor),
            access: access(f[3]),
        }
    }

    /// A request like `"c 1:3 rw"` as the program's context.
    fn request(s: &str) -> Ctx {
        let f: Vec<&str> = s.split(' ').collect();
        let ty = if f[0] == "b" { 1 } else { 2 };
        let (major, minor) = f[1].split_once(':').unwrap();
        let access = u32::from(access(f[2]));
        [
            access << 16 | ty,
            major.parse().unwrap(),
            minor.parse().unwrap(),
        ]
    }

    /// `rwm` letters as `ACC_*` bits.
    fn access(s: &str) -> u8 {
        s.chars()
            .map(|c| match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                _ => ACC_MKNOD,
            })
            .fold(0, |a, b| a | b)
    }

    /// The semantics, computed forward and independently of `program`: a reset sets the
    /// verdict, and so does every later rule matching the request.
    fn expected(rules: &[Rule], [access_type, major, minor]: Ctx) -> bool {
        let (ty, access) = (access_type & 0xffff, (access_type >> 16) as u8);
        let mut allow = false;
        for r in rules {
            let kind = match r.kind {
                Kind::All => true,
                Kind::Char => ty == 2,
                Kind::Block => ty == 1,
            };
            let access_matches = if r.allow {
                access & !r.access == 0
            } else {
                access & r.access != 0
            };
            let matches = kind
                && r.major.is_none_or(|m| m == major)
                && r.minor.is_none_or(|m| m == minor)
                && access_matches;
            if r.is_reset() || matches {
                allow = r.allow;
            }
        }
        allow
    }

    const DENY_ALL: &str = "deny a *:* rwm";
    const ALLOW_ALL: &str = "allow a *:* rwm";

    /// Rules, and requests with whether they are allowed.
    type Case = (&'static [&'static str], &'static [(&'static str, bool)]);

    const CASES: &[Case] = &[
        // No reset rule: deny unless allowed.
        (&[], &[("c 1:3 r", false), ("b 8:0 m", false)]),
        (
            &["allow c 1:3 rwm"],
            &[("c 1:3 rw", true), ("c 1:5 r", false)],
        ),
        // Default deny.
        (&[DENY_ALL], &[("c 1:3 r", false), ("b 8:0 rwm", false)]),
        // Reset allow with deny exceptions.
        (
            &[ALLOW_ALL, "deny c 1:5 rwm", "deny b 8:* w"],
            &[
                ("c 1:3 rw", true),
                ("c 1:5 r", false),
                ("b 8:0 r", true),
                ("b 8:0 w", false),
                ("b 8:0 rw", false),
                ("c 8:0 w", true),
            ],
        ),
        // Wildcard minors.
        (
            &[DENY_ALL, "allow c 136:* rwm"],
            &[
                ("c 136:0 rw", true),
                ("c 136:1048575 rw", true),
                ("c 137:0 r", false),
                ("b 136:0 r", false),
            ],
        ),
        // Access subsets for allow rules.
        (
            &[DENY_ALL, "allow c 1:5 r"],
            &[
                ("c 1:5 r", true),
                ("c 1:5 rw", false),
                ("c 1:5 w", false),
                ("c 1:5 m", false),
            ],
        ),
        // Deny rules catch any shared access bit.
        (
            &[ALLOW_ALL, "deny c 1:5 w"],
            &[("c 1:5 rw", false), ("c 1:5 r", true), ("c 1:5 m", true)],
        ),
        // The last matching rule wins.
        (
            &[DENY_ALL, "allow c 1:3 rwm", "deny c 1:3 w"],
            &[("c 1:3 r", true), ("c 1:3 w", false), ("c 1:3 rw", false)],
        ),
        (
            &[DENY_ALL, "deny c 1:3 w", "allow c 1:3 rwm"],
            &[("c 1:3 w", true), ("c 1:3 rw", true)],
        ),
        // Kind `a` matches both kinds, `c` and `b` only theirs.
        (
            &[DENY_ALL, "allow a 8:* r"],
            &[("c 8:1 r", true), ("b 8:1 r", true), ("b 8:1 w", false)],
        ),
        (
            &[DENY_ALL, "allow b 8:* rwm"],
            &[("c 8:1 r", false), ("b 8:1 r", true)],
        ),
        // Rules before the last reset don't count.
        (
            &["allow c 1:3 rwm", ALLOW_ALL, "deny c 1:5 rwm", DENY_ALL],
            &[("c 1:3 r", false), ("c 1:7 r", false)],
        ),
        (
            &[DENY_ALL, "deny c 1:3 rwm", ALLOW_ALL, "deny c 1:5 r"],
            &[("c 1:3 rw", true), ("c 1:5 r", false), ("c 1:5 w", true)],
        ),
        // Numbers that don't fit an i32 immediate.
        (
            &[DENY_ALL, "allow c 4294967295:2147483648 r"],
            &[
                ("c 4294967295:2147483648 r", true),
                ("c 2147483647:2147483648 r", false),
                ("c 4294967295:0 r", false),
            ],
        ),
    ];

    #[test]
    fn program_verdicts_follow_the_rules() {
        for (rules, requests) in CASES {
            let rules: Vec<Rule> = rules.iter().map(|r| rule(r)).collect();
            let prog = program(&rules);
            for (req, allowed) in *requests {
                let ctx = request(req);
                assert_eq!(run(&prog, ctx), *allowed, "{req} with {rules:?}");
                assert_eq!(
                    expected(&rules, ctx),
                    *allowed,
                    "oracle: {req} with {rules:?}"
                );
            }
        }
    }

    /// Every case's rule list against the forward semantics, on a grid of requests including
    /// the numbers the rules use, their neighbours and every access combination.
    #[test]
    fn program_matches_the_semantics_on_a_grid() {
        let numbers = [0, 1, 3, 5, 7, 8, 136, 137, 2147483648, u32::MAX];
        for (rules, _) in CASES {
            let rules: Vec<Rule> = rules.iter().map(|r| rule(r)).collect();
            let prog = program(&rules);
            for ty in [1, 2] {
                for access in 0..=7u32 {
                    for major in numbers {
                        for minor in numbers {
                            let ctx = [access << 16 | ty, major, minor];
                            assert_eq!(
                                run(&prog, ctx),
                                expected(&rules, ctx),
                                "{ctx:?} with {rules:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn standard_rules_allow_the_standard_devices() {
        let prog = program(&devices::rules(&[], &[]).unwrap());
        for (req, allowed) in [
            ("c 1:3 rw", true),
            ("c 1:7 rw", true),
            ("c 136:3 rw", true),
            ("c 5:2 rw", true),
            ("b 8:0 m", true),
            ("c 10:200 m", true),
            ("b 8:0 r", false),
            ("c 10:200 rw", false),
        ] {
            assert_eq!(run(&prog, request(req)), allowed, "{req}");
        }
    }

    #[test]
    fn rules_before_the_last_reset_emit_nothing() {
        let short = program(&[rule(DENY_ALL), rule("allow c 1:3 rwm")]);
        let long = program(&[
            rule("allow c 1:5 r"),
            rule(ALLOW_ALL),
            rule("deny b 8:0 w"),
            rule(DENY_ALL),
            rule("allow c 1:3 rwm"),
        ]);
        assert_eq!(short, long);
    }

    // ---- against the kernel (needs root and a cgroup2 mount) ----

    /// A cgroup created for the test under this process's own unified cgroup, removed on drop.
    struct TempCgroup(PathBuf);

    impl TempCgroup {
        /// None (the test is skipped) when not root or without a cgroup2 mount.
        fn create() -> Option<Self> {
            if !nix::unistd::geteuid().is_root() {
                eprintln!("skipped: needs root");
                return None;
            }
            let cgroups = fs::read_to_string("/proc/self/cgroup").unwrap();
            let own = cgroups.lines().find_map(|l| l.strip_prefix("0::"));
            let mount = barge_util::mountinfo::read_self()
                .unwrap()
                .into_iter()
                .find(|m| m.fstype == "cgroup2");
            let (Some(own), Some(mount)) = (own, mount) else {
                eprintln!("skipped: no cgroup2 hierarchy");
                return None;
            };
            let rel = Path::new(own).strip_prefix(&mount.root).unwrap();
            let dir = mount
                .mount_point
                .join(rel)
                .join(format!("barge-bpf-test-{}", std::process::id()));
            fs::create_dir(&dir).unwrap();
            Some(TempCgroup(dir))
        }

        fn programs(&self) -> Vec<u32> {
            let dir = fs::File::open(&self.0).unwrap();
            sys::bpf_prog_query(dir.as_fd(), ATTACH_CGROUP_DEVICE).unwrap()
        }
    }

    impl Drop for TempCgroup {
        fn drop(&mut self) {
            if let Err(e) = fs::remove_dir(&self.0) {
                eprintln!("remove {}: {e}", self.0.display());
            }
        }
    }

    /// Moves itself into the cgroup `$1`, then reports `<name> ok` or `<name> fail: <error>`
    /// for each device access.
    const PROBE: &str = r#"
        echo $$ > "$1/cgroup.procs" || exit 99
        try() { if out=$(eval "$2" 2>&1); then echo "$1 ok"; else echo "$1 fail: $out"; fi; }
        try null-write ': > /dev/null'
        try zero-read 'head -c1 /dev/zero | wc -c'
        try zero-write ': > /dev/zero'
        try full-open ': < /dev/full'
    "#;

    #[test]
    fn attach_enforces_the_rules_in_a_real_cgroup() {
        let Some(cg) = TempCgroup::create() else {
            return;
        };
        // First a program denying everything, then the real one, which must replace it.
        attach(&cg.0, &[rule(DENY_ALL)]).unwrap();
        let first = cg.programs();
        assert_eq!(first.len(), 1, "{first:?}");
        let rules = [
            rule(DENY_ALL),
            rule("allow c 1:3 rwm"), // /dev/null
            rule("allow c 1:5 r"),   // /dev/zero
        ];
        attach(&cg.0, &rules).unwrap();
        let second = cg.programs();
        assert_eq!(second.len(), 1, "{second:?}");
        assert_ne!(first, second);

        let out = Command::new("sh")
            .args(["-c", PROBE, "sh"])
            .arg(&cg.0)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines[0], "null-write ok", "{stdout}");
        assert_eq!(lines[1], "zero-read ok", "{stdout}");
        assert!(lines[2].starts_with("zero-write fail"), "{stdout}");
        assert!(lines[3].starts_with("full-open fail"), "{stdout}");
        for l in &lines[2..] {
            assert!(l.ends_with("Operation not permitted"), "{stdout}");
        }
    }

    #[test]
    fn the_verifier_accepts_every_case() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let standard = devices::rules(&[], &[]).unwrap();
        let cases = CASES
            .iter()
            .map(|(rules, _)| rules.iter().map(|r| rule(r)).collect::<Vec<_>>());
        for rules in cases.chain([standard]) {
            load(Path::new("/test/cgroup"), &program(&rules)).unwrap();
        }
    }

    #[test]
    fn a_refused_program_reports_the_verifier_log() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        // Exits without setting r0.
        let bad = [BpfInsn::new(CLASS_JMP | OP_EXIT, 0, 0, 0, 0)];
        let e = load(Path::new("/test/cgroup"), &bad).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("/test/cgroup") && msg.contains("R0"), "{msg}");
    }
}
