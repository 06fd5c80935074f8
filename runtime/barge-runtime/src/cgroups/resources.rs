//! `linux.resources`: checked before anything is created, then applied controller by
//! controller through the driver [`Placement::dir_for`] picks (v1 files or v2 files).

use std::collections::HashMap;

use oci_spec::runtime::{LinuxDevice, LinuxResources};

use super::{bpf, devices, v1, v2, Driver, Mode, Placement};
use crate::error::{Error, Result};

/// Whether resources are applied to a new container or changed on a live one (`update`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Create,
    Update,
}

fn bad(field: &str, why: impl std::fmt::Display) -> Error {
    Error::Config(format!("linux.resources.{field}: {why}"))
}

/// -1 (unlimited) or a non-negative number.
fn limit(field: &str, v: Option<i64>) -> Result<()> {
    match v {
        Some(n) if n < -1 => Err(bad(field, format!("{n} is invalid (use -1 for unlimited)"))),
        _ => Ok(()),
    }
}

/// A cpu or memory-node list such as `0-3,7`.
fn cpu_list(field: &str, v: Option<&String>) -> Result<()> {
    let Some(s) = v else { return Ok(()) };
    let ok = !s.trim().is_empty()
        && s.trim().split(',').all(|part| {
            let mut ends = part.split('-');
            let n = |x: Option<&str>| x.is_some_and(|x| !x.is_empty() && x.parse::<u32>().is_ok());
            match (ends.next(), ends.next(), ends.next()) {
                (a, None, None) => n(a),
                (a, b, None) => n(a) && n(b),
                _ => false,
            }
        });
    if ok {
        Ok(())
    } else {
        Err(bad(field, format!("{s:?} is not a list like 0-3,7")))
    }
}

fn weight(field: &str, v: Option<u16>) -> Result<()> {
    match v {
        Some(w) if w != 0 && !(10..=1000).contains(&w) => {
            Err(bad(field, format!("{w} is out of range 10..=1000")))
        }
        _ => Ok(()),
    }
}

fn device_number(field: &str, major: i64, minor: i64) -> Result<()> {
    for (what, n) in [("major", major), ("minor", minor)] {
        if u32::try_from(n).is_err() {
            return Err(bad(field, format!("{what} {n} is not a device number")));
        }
    }
    Ok(())
}

/// A hugepage size as the spec writes it: `2MB`, `1GB`, `64KB`.
pub(crate) fn page_size(s: &str) -> Option<(u64, &str)> {
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (num, unit) = s.split_at(digits);
    let n: u64 = num.parse().ok()?;
    matches!(unit, "KB" | "MB" | "GB").then_some((n, unit))
}

/// A plain file name for `unified` keys and interface names: no `/`, not `.`/`..`.
fn plain_name(field: &str, s: &str) -> Result<()> {
    if s.is_empty() || s == "." || s == ".." || s.contains('/') || s.contains(char::is_whitespace) {
        return Err(bad(field, format!("{s:?} is not a plain name")));
    }
    Ok(())
}

/// Check every field of `linux.resources` for values no kernel would take. Runs before any
/// cgroup is created, so bad input leaves nothing behind.
pub fn validate(r: &LinuxResources) -> Result<()> {
    devices::rules(r.devices().as_deref().unwrap_or_default(), &[])?;
    if let Some(m) = r.memory() {
        limit("memory.limit", m.limit())?;
        limit("memory.reservation", m.reservation())?;
        limit("memory.swap", m.swap())?;
        limit("memory.kernel", m.kernel())?;
        limit("memory.kernelTCP", m.kernel_tcp())?;
        if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
            if l > 0 && s > 0 && s < l {
                return Err(bad(
                    "memory.swap",
                    format!("{s} is below memory.limit {l} (swap is memory plus swap)"),
                ));
            }
        }
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(bad(
                    "memory.swappiness",
                    format!("{s} is out of range 0..=100"),
                ));
            }
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares() {
            if s > 262_144 {
                return Err(bad("cpu.shares", format!("{s} is above 262144")));
            }
        }
        match c.quota() {
            Some(q) if q < -1 || (0..1000).contains(&q) && q != 0 => {
                return Err(bad(
                    "cpu.quota",
                    format!("{q} is invalid (at least 1000 µs, or -1 for unlimited)"),
                ))
            }
            _ => {}
        }
        if let Some(p) = c.period() {
            if p != 0 && !(1000..=1_000_000).contains(&p) {
                return Err(bad(
                    "cpu.period",
                    format!("{p} is out of range 1000..=1000000 µs"),
                ));
            }
        }
        limit("cpu.realtimeRuntime", c.realtime_runtime())?;
        if let Some(i) = c.idle() {
            if !(0..=1).contains(&i) {
                return Err(bad("cpu.idle", format!("{i} is invalid (0 or 1)")));
            }
        }
        cpu_list("cpu.cpus", c.cpus().as_ref())?;
        cpu_list("cpu.mems", c.mems().as_ref())?;
    }
    if let Some(p) = r.pids() {
        limit("pids.limit", Some(p.limit()))?;
    }
    if let Some(b) = r.block_io() {
        weight("blockIO.weight", b.weight())?;
        weight("blockIO.leafWeight", b.leaf_weight())?;
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            let f = format!("blockIO.weightDevice[{i}]");
            device_number(&f, d.major(), d.minor())?;
            weight(&format!("{f}.weight"), d.weight())?;
            weight(&format!("{f}.leafWeight"), d.leaf_weight())?;
        }
        for (name, list) in throttles(b) {
            for (i, d) in list.iter().enumerate() {
                device_number(&format!("blockIO.{name}[{i}]"), d.major(), d.minor())?;
            }
        }
    }
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let f = format!("hugepageLimits[{i}]");
        if page_size(h.page_size()).is_none() {
            return Err(bad(
                &format!("{f}.pageSize"),
                format!("{:?} is not a size like 2MB or 1GB", h.page_size()),
            ));
        }
        if h.limit() < 0 {
            return Err(bad(
                &format!("{f}.limit"),
                format!("{} is negative", h.limit()),
            ));
        }
    }
    if let Some(n) = r.network() {
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            plain_name(&format!("network.priorities[{i}].name"), p.name())?;
        }
    }
    for name in r.rdma().iter().flat_map(HashMap::keys) {
        plain_name("rdma", name)?;
    }
    for key in r.unified().iter().flat_map(HashMap::keys) {
        plain_name("unified", key)?;
    }
    Ok(())
}

pub(crate) fn throttles(
    b: &oci_spec::runtime::LinuxBlockIo,
) -> [(&'static str, &[oci_spec::runtime::LinuxThrottleDevice]); 4] {
    fn l(
        v: &Option<Vec<oci_spec::runtime::LinuxThrottleDevice>>,
    ) -> &[oci_spec::runtime::LinuxThrottleDevice] {
        v.as_deref().unwrap_or_default()
    }
    [
        ("throttleReadBpsDevice", l(b.throttle_read_bps_device())),
        ("throttleWriteBpsDevice", l(b.throttle_write_bps_device())),
        ("throttleReadIOPSDevice", l(b.throttle_read_iops_device())),
        ("throttleWriteIOPSDevice", l(b.throttle_write_iops_device())),
    ]
}

impl Placement {
    /// The directory for a controller the config needs, or an error naming the field.
    fn need(&self, controller: &str, field: &str) -> Result<(Driver, &std::path::Path)> {
        self.dir_for(controller).ok_or_else(|| {
            Error::Unsupported(format!(
                "linux.resources.{field}: this host has no {controller} cgroup controller ({:?} \
                 cgroups)",
                self.mode
            ))
        })
    }

    /// Apply `linux.resources` (plus the device list of `linux.devices` at creation).
    ///
    /// Callers [`validate`] first, before they create anything (`create`, `update`).
    pub fn apply(&self, r: &LinuxResources, devs: &[LinuxDevice], phase: Phase) -> Result<()> {
        if let Some(why) = &self.skipped {
            // No cgroups (rootless): no limits can be set, and device rules, which need a
            // devices cgroup, are left to the user namespace.
            let limits = super::limits_asked(r);
            if limits.is_empty() {
                return Ok(());
            }
            return Err(Error::Unsupported(format!(
                "{}: the container runs without cgroups ({why})",
                limits.join(", ")
            )));
        }
        if self.unified.is_some() {
            v2::enable(self, &v2::wanted(self, r))?;
        }
        if let Some(m) = r.memory() {
            if memory_set(m) {
                match self.need("memory", "memory")? {
                    (Driver::V1, d) => v1::memory(d, m, phase)?,
                    (Driver::V2, d) => v2::memory(d, m, phase)?,
                }
            }
        }
        if let Some(c) = r.cpu() {
            if c.shares().is_some_and(|s| s != 0)
                || c.quota().is_some()
                || c.period().is_some_and(|p| p != 0)
                || c.burst().is_some()
                || c.realtime_runtime().is_some()
                || c.realtime_period().is_some()
                || c.idle().is_some()
            {
                match self.need("cpu", "cpu")? {
                    (Driver::V1, d) => v1::cpu(d, c)?,
                    (Driver::V2, d) => v2::cpu(d, c)?,
                }
            }
            if c.cpus().is_some() || c.mems().is_some() {
                // Same file names on v1 and v2.
                let (_, d) = self.need("cpuset", "cpu.cpus")?;
                v1::cpuset(d, c)?;
            }
        }
        if let Some(p) = r.pids() {
            if p.limit() != 0 {
                let (_, d) = self.need("pids", "pids")?;
                let v = if p.limit() < 0 {
                    "max".to_string()
                } else {
                    p.limit().to_string()
                };
                super::write(d, "pids.max", v)?;
            }
        }
        if let Some(b) = r.block_io() {
            match self.need("blkio", "blockIO")? {
                (Driver::V1, d) => v1::blkio(d, b)?,
                (Driver::V2, d) => v2::io(d, b)?,
            }
        }
        if let Some(h) = r.hugepage_limits().as_deref().filter(|h| !h.is_empty()) {
            match self.need("hugetlb", "hugepageLimits")? {
                (Driver::V1, d) => v1::hugetlb(d, h)?,
                (Driver::V2, d) => v2::hugetlb(d, h)?,
            }
        }
        if let Some(n) = r.network() {
            if let Some(id) = n.class_id() {
                let (_, d) = self.need_v1("net_cls", "network.classID")?;
                super::write(d, "net_cls.classid", id.to_string())?;
            }
            for p in n.priorities().iter().flatten() {
                let (_, d) = self.need_v1("net_prio", "network.priorities")?;
                super::write(
                    d,
                    "net_prio.ifpriomap",
                    format!("{} {}", p.name(), p.priority()),
                )?;
            }
        }
        if let Some(rdma) = r.rdma().as_ref().filter(|m| !m.is_empty()) {
            let (_, d) = self.need("rdma", "rdma")?;
            v1::rdma(d, rdma)?;
        }
        if let Some(u) = r.unified().as_ref().filter(|m| !m.is_empty()) {
            v2::unified(self, u)?;
        }
        if phase == Phase::Create {
            let rules = devices::rules(r.devices().as_deref().unwrap_or_default(), devs)?;
            // v2 has no devices controller files: an eBPF program on the unified directory
            // does the job (also on hosts whose v1 tree lacks the devices controller).
            match (self.controllers.get("devices"), &self.unified) {
                (Some(d), _) => devices::apply_v1(d, &rules)?,
                (None, Some(d)) => bpf::attach(d, &rules)?,
                (None, None) => tracing::warn!(
                    "no devices cgroup controller: the device list of the config is not enforced"
                ),
            }
        }
        Ok(())
    }

    fn need_v1(&self, controller: &str, field: &str) -> Result<(Driver, &std::path::Path)> {
        match self.controllers.get(controller) {
            Some(d) => Ok((Driver::V1, d)),
            None if self.mode == Mode::V2 => Err(Error::Unsupported(format!(
                "linux.resources.{field}: cgroup v2 has no {controller} controller"
            ))),
            None => self.need(controller, field),
        }
    }
}

fn memory_set(m: &oci_spec::runtime::LinuxMemory) -> bool {
    m.limit().is_some()
        || m.reservation().is_some()
        || m.swap().is_some()
        || m.kernel().is_some()
        || m.kernel_tcp().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer().is_some()
        || m.use_hierarchy().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn err(json: &str) -> String {
        validate(&res(json)).unwrap_err().to_string()
    }

    #[test]
    fn bad_values_are_named() {
        assert!(err(r#"{"memory":{"limit":-2}}"#).contains("memory.limit"));
        assert!(err(r#"{"memory":{"limit":100000000,"swap":1000}}"#).contains("memory.swap"));
        assert!(err(r#"{"memory":{"swappiness":101}}"#).contains("swappiness"));
        assert!(err(r#"{"cpu":{"shares":300000}}"#).contains("cpu.shares"));
        assert!(err(r#"{"cpu":{"quota":-7}}"#).contains("cpu.quota"));
        assert!(err(r#"{"cpu":{"quota":10}}"#).contains("cpu.quota"));
        assert!(err(r#"{"cpu":{"period":10}}"#).contains("cpu.period"));
        assert!(err(r#"{"cpu":{"cpus":"0-"}}"#).contains("cpu.cpus"));
        assert!(err(r#"{"cpu":{"mems":"a"}}"#).contains("cpu.mems"));
        assert!(err(r#"{"pids":{"limit":-3}}"#).contains("pids.limit"));
        assert!(err(r#"{"blockIO":{"weight":5}}"#).contains("blockIO.weight"));
        assert!(
            err(r#"{"blockIO":{"throttleReadBpsDevice":[{"major":-1,"minor":0,"rate":1}]}}"#)
                .contains("throttleReadBpsDevice[0]")
        );
        assert!(err(r#"{"hugepageLimits":[{"pageSize":"2XB","limit":1}]}"#).contains("pageSize"));
        assert!(err(r#"{"unified":{"../x":"1"}}"#).contains("unified"));
        assert!(err(r#"{"devices":[{"allow":true,"type":"u"}]}"#).contains("devices[0].type"));
    }

    #[test]
    fn good_values_pass() {
        validate(&res(
            r#"{"memory":{"limit":-1,"swap":-1},"cpu":{"shares":1024,"quota":-1,
                "period":100000,"cpus":"0-1,3","mems":"0"},"pids":{"limit":-1},
                "hugepageLimits":[{"pageSize":"2MB","limit":0}],
                "devices":[{"allow":false,"access":"rwm"}]}"#,
        ))
        .unwrap();
        assert_eq!(page_size("1GB"), Some((1, "GB")));
        assert_eq!(page_size("64KB"), Some((64, "KB")));
    }
}
