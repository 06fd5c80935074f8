//! One device's task: connect its driver, read each property on its `collectCycle` and
//! report it (`reportCycle`: at most that often), write desired values from deltas (then
//! read back and report at once), and publish `online`/`offline` when the connection comes
//! and goes. The task owns the driver; it reconnects with a capped backoff and keeps deltas
//! that arrived while the device was away until it is back.

use std::collections::BTreeMap;
use std::time::Duration;

use barge_edge_proto::device::mqtt::MembershipDevice;
use barge_edge_proto::device::{AccessMode, ModelProperty};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::bus::Bus;
use crate::driver::{Driver, DriverError};
use crate::value;

/// Default `collectCycle` (ms).
pub const DEFAULT_COLLECT_MS: u64 = 1000;
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(3);

/// Messages to a device task.
#[derive(Debug)]
pub enum DeviceCmd {
    /// Desired values to write (property -> value), from `twin/update/delta`.
    Delta(BTreeMap<String, String>),
}

/// One property the task collects.
struct Prop<V> {
    name: String,
    model: ModelProperty,
    visitor: V,
    collect: Duration,
    report: Option<Duration>,
    next_read: Instant,
    last_report: Option<Instant>,
    /// The last read error logged (the same error is logged once, not every cycle).
    last_error: Option<String>,
}

/// The device's id (`membership` id, or its name).
pub fn device_id(d: &MembershipDevice) -> &str {
    if d.id.is_empty() {
        &d.name
    } else {
        &d.id
    }
}

/// Run the device until the task is aborted (device removed, mapper stopping).
pub async fn run<D: Driver>(dev: MembershipDevice, bus: Bus, mut rx: mpsc::Receiver<DeviceCmd>) {
    let id = device_id(&dev).to_string();
    let (Some(spec), Some(model)) = (dev.spec.as_ref(), dev.model.as_ref()) else {
        tracing::error!("device {id}: the membership entry has no spec or model; skipped");
        return;
    };
    let Some(protocol) = spec.protocol.clone() else {
        tracing::error!("device {id}: no spec.protocol; skipped");
        return;
    };
    let now = Instant::now();
    let mut props: Vec<Prop<D::Visitor>> = Vec::new();
    for p in &spec.properties {
        let Some(mp) = model.property(&p.name) else {
            tracing::error!(
                "device {id}, property {}: not in the device model; skipped",
                p.name
            );
            continue;
        };
        let config = p
            .visitors
            .as_ref()
            .map(|v| v.config_data.clone())
            .unwrap_or(serde_json::Value::Null);
        let visitor = match D::visitor(&p.name, &config, mp) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!("device {id}: {e}; property skipped");
                continue;
            }
        };
        let ms = |v: Option<i64>| {
            v.filter(|&n| n > 0)
                .map(|n| Duration::from_millis(n as u64))
        };
        props.push(Prop {
            name: p.name.clone(),
            model: mp.clone(),
            visitor,
            collect: ms(p.collect_cycle).unwrap_or(Duration::from_millis(DEFAULT_COLLECT_MS)),
            report: ms(p.report_cycle),
            next_read: now,
            last_report: None,
            last_error: None,
        });
    }
    // Desired values the membership shows as not yet reached are written first.
    let mut pending: BTreeMap<String, String> = dev
        .twin
        .iter()
        .filter_map(|(name, t)| {
            let want = t.expected.as_ref()?.value.clone()?;
            let have = t.actual.as_ref().and_then(|a| a.value.clone());
            (have.as_deref() != Some(want.as_str())).then(|| (name.clone(), want))
        })
        .collect();
    tracing::info!(
        "device {id}: {} property(ies) over {}",
        props.len(),
        D::PROTOCOL
    );

    let mut online: Option<bool> = None;
    let mut backoff = BACKOFF_MIN;
    loop {
        // Connect.
        let mut driver = match D::connect(&id, &protocol).await {
            Ok(d) => d,
            Err(e) => {
                if online != Some(false) {
                    tracing::warn!("{e}; device offline, retrying");
                    bus.state(&id, "offline");
                    online = Some(false);
                }
                let wait = if matches!(e, DriverError::Config(_)) {
                    BACKOFF_MAX
                } else {
                    backoff
                };
                backoff = (backoff * 2).min(BACKOFF_MAX);
                let deadline = Instant::now() + wait;
                while let Ok(Some(cmd)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                    merge(&mut pending, cmd);
                }
                continue;
            }
        };
        backoff = BACKOFF_MIN;
        if online != Some(true) {
            tracing::info!("device {id}: online");
            bus.state(&id, "online");
        }
        // Connected: serve until the connection fails.
        let lost = serve::<D>(&id, &bus, &mut driver, &mut props, &mut pending, &mut rx).await;
        tracing::warn!("{lost}; device offline, reconnecting");
        bus.state(&id, "offline");
        online = Some(false);
    }
}

fn merge(pending: &mut BTreeMap<String, String>, cmd: DeviceCmd) {
    match cmd {
        DeviceCmd::Delta(d) => pending.extend(d),
    }
}

/// Collect, report and write until a connection error (returned).
async fn serve<D: Driver>(
    id: &str,
    bus: &Bus,
    driver: &mut D,
    props: &mut [Prop<D::Visitor>],
    pending: &mut BTreeMap<String, String>,
    rx: &mut mpsc::Receiver<DeviceCmd>,
) -> DriverError {
    loop {
        // Desired values first.
        while let Some((name, want)) = pending.pop_first() {
            let Some(p) = props.iter_mut().find(|p| p.name == name) else {
                tracing::warn!("device {id}: delta for property {name}, which this mapper does not handle; ignored");
                continue;
            };
            if p.model.access_mode == AccessMode::ReadOnly {
                tracing::warn!("device {id}, property {name}: ReadOnly; delta {want:?} ignored");
                continue;
            }
            let v = match value::parse_desired(&p.model, &want) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!("device {id}: {e}; delta ignored");
                    continue;
                }
            };
            match driver.write(&p.name, &p.visitor, &v).await {
                Ok(()) => {
                    tracing::info!("device {id}, property {name}: wrote {want}");
                    // Read back and report now.
                    p.next_read = Instant::now();
                    p.last_report = None;
                }
                Err(DriverError::Connection(e)) => {
                    pending.insert(name, want);
                    return DriverError::Connection(e);
                }
                Err(e) => tracing::warn!("write {want:?}: {e}"),
            }
        }
        let Some(next) = props.iter().map(|p| p.next_read).min() else {
            // Nothing to collect: only deltas.
            match rx.recv().await {
                Some(cmd) => {
                    merge(pending, cmd);
                    continue;
                }
                None => return DriverError::Connection(format!("device {id}: stopped")),
            }
        };
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => { merge(pending, cmd); continue; }
                None => return DriverError::Connection(format!("device {id}: stopped")),
            },
            _ = tokio::time::sleep_until(next) => {}
        }
        let now = Instant::now();
        let mut report = Vec::new();
        for p in props.iter_mut().filter(|p| p.next_read <= now) {
            p.next_read = now + p.collect;
            let reading = match driver.read(&p.name, &p.visitor).await {
                Ok(r) => {
                    if p.last_error.take().is_some() {
                        tracing::info!("device {id}, property {}: read again", p.name);
                    }
                    r
                }
                Err(DriverError::Connection(e)) => return DriverError::Connection(e),
                Err(e) => {
                    let e = e.to_string();
                    if p.last_error.as_deref() != Some(e.as_str()) {
                        tracing::warn!("read: {e}");
                        p.last_error = Some(e);
                    }
                    continue;
                }
            };
            let text = match value::format(&p.model, &reading) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!("device {id}: {e}");
                    continue;
                }
            };
            let due = match (p.last_report, p.report) {
                (None, _) | (_, None) => true,
                (Some(last), Some(cycle)) => now >= last + cycle,
            };
            if due {
                p.last_report = Some(now);
                report.push((p.name.clone(), p.model.type_, text));
            }
        }
        if !report.is_empty() {
            bus.report(id, &report);
        }
    }
}
