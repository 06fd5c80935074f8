//! The checks docker's daemon makes on a create request, with docker's messages, as
//! [`Error::BadParameter`]s: memory and CPU limits, mount destinations, the working directory.
//! Limits that mean "none" (`-m 0`, `--cpus 0`) are normalised to None here.

use std::path::{Component, Path};

use crate::config::{ContainerConfig, MountSpec};
use crate::error::{Error, Result};

/// The smallest memory limit docker accepts (below it the container's own setup does not fit).
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The smallest `--cpus` docker accepts (a CFS quota of 1 ms per 100 ms period).
pub const MIN_CPUS: f64 = 0.01;

/// Check (and normalise) a create request.
pub fn request(c: &mut ContainerConfig) -> Result<()> {
    limits(c)?;
    for m in &c.mounts {
        mount(m)?;
    }
    working_dir(&c.working_dir)
}

/// Check (and normalise) the resource limits (a create's, an update's).
pub fn limits(c: &mut ContainerConfig) -> Result<()> {
    memory(&mut c.memory)?;
    cpus(&mut c.cpus, online_cpus())
}

fn memory(m: &mut Option<i64>) -> Result<()> {
    match *m {
        Some(0) => *m = None,
        Some(v) if v < 0 => {
            return Err(Error::BadParameter(format!(
                "invalid memory limit {v}: it must be a positive size"
            )))
        }
        Some(v) if v < MIN_MEMORY => {
            return Err(Error::BadParameter(
                "Minimum memory limit allowed is 6MB".into(),
            ))
        }
        _ => {}
    }
    Ok(())
}

fn cpus(c: &mut Option<f64>, ncpu: usize) -> Result<()> {
    match *c {
        Some(0.0) => *c = None,
        Some(v) if !v.is_finite() || v < MIN_CPUS || v > ncpu as f64 => {
            return Err(Error::BadParameter(format!(
                "range of CPUs is from {MIN_CPUS:.2} to {ncpu}.00, as there are only {ncpu} CPUs available"
            )))
        }
        _ => {}
    }
    Ok(())
}

/// The CPUs this process may run on (docker's `runtime.NumCPU`: the affinity mask), at
/// least 1.
pub fn online_cpus() -> usize {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&i| set.is_set(i).unwrap_or(false))
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

/// A mount's destination as a clean absolute path (`//a/./b/` is `/a/b`).
fn clean(dest: &str) -> String {
    let mut out = String::new();
    for c in Path::new(dest).components() {
        if let Component::Normal(n) = c {
            out.push('/');
            out.push_str(&n.to_string_lossy());
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn mount(m: &MountSpec) -> Result<()> {
    if clean(&m.destination) == "/" {
        let spec = if m.source.is_empty() {
            m.destination.clone()
        } else {
            format!("{}:{}", m.source, m.destination)
        };
        return Err(Error::BadParameter(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"{}\": invalid specification: destination can't be '/'",
            m.kind
        )));
    }
    Ok(())
}

fn working_dir(wd: &str) -> Result<()> {
    if !wd.is_empty() && !wd.starts_with('/') {
        return Err(Error::BadParameter(format!(
            "the working directory '{wd}' is invalid, it needs to be an absolute path"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(r: Result<()>) -> String {
        match r {
            Err(Error::BadParameter(m)) => m,
            other => panic!("expected a bad parameter, got {other:?}"),
        }
    }

    #[test]
    fn memory_limits() {
        for v in [1, 4096, MIN_MEMORY - 1] {
            assert_eq!(
                msg(memory(&mut Some(v))),
                "Minimum memory limit allowed is 6MB"
            );
        }
        assert!(msg(memory(&mut Some(-1))).contains("-1"));
        let mut m = Some(0);
        memory(&mut m).unwrap();
        assert_eq!(m, None);
        let mut m = Some(MIN_MEMORY);
        memory(&mut m).unwrap();
        assert_eq!(m, Some(MIN_MEMORY));
    }

    #[test]
    fn cpu_limits() {
        let want = "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available";
        for v in [1000.0, 2.01, -1.0, 0.001, f64::NAN, f64::INFINITY] {
            assert_eq!(msg(cpus(&mut Some(v), 2)), want, "{v}");
        }
        for v in [0.01, 1.5, 2.0] {
            let mut c = Some(v);
            cpus(&mut c, 2).unwrap();
            assert_eq!(c, Some(v));
        }
        let mut c = Some(0.0);
        cpus(&mut c, 2).unwrap();
        assert_eq!(c, None);
        assert!(online_cpus() >= 1);
    }

    #[test]
    fn root_destination_is_refused() {
        let m = |src: &str, dst: &str, kind: &str| MountSpec {
            kind: kind.into(),
            source: src.into(),
            destination: dst.into(),
            readonly: false,
            nocopy: false,
        };
        assert_eq!(
            msg(mount(&m("/tmp", "/", "bind"))),
            "invalid volume specification: '/tmp:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        );
        for d in ["//", "/.", "/./"] {
            assert!(mount(&m("v", d, "volume")).is_err(), "{d}");
        }
        mount(&m("/tmp", "/data", "bind")).unwrap();
        assert_eq!(clean("//a/./b/"), "/a/b");
    }

    #[test]
    fn working_dir_is_absolute() {
        working_dir("").unwrap();
        working_dir("/x/y").unwrap();
        assert!(msg(working_dir("rel")).contains("needs to be an absolute path"));
    }
}
