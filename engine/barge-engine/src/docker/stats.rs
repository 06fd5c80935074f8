//! `GET /containers/{id}/stats`: docker's statistics document, from two samples (the
//! previous one gives `precpu_stats`, from which clients compute CPU %).

use serde_json::{json, Map, Value};

use crate::stats::StatsSample;

use super::container::ZERO_TIME;

fn cpu(s: Option<&StatsSample>) -> Value {
    let Some(s) = s else {
        return json!({
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        });
    };
    json!({
        "cpu_usage": {
            "total_usage": s.cpu_total,
            "percpu_usage": s.cpu_percpu,
            "usage_in_kernelmode": s.cpu_kernel,
            "usage_in_usermode": s.cpu_user,
        },
        "system_cpu_usage": s.system_cpu,
        "online_cpus": s.online_cpus,
        "throttling_data": {
            "periods": s.throttling.0,
            "throttled_periods": s.throttling.1,
            "throttled_time": s.throttling.2,
        },
    })
}

fn time(s: Option<&StatsSample>) -> String {
    match s {
        Some(s) => barge_util::time::rfc3339_nano(s.read.0, s.read.1),
        None => ZERO_TIME.into(),
    }
}

/// docker's stats document of container `id` named `name`, `cur` now and `prev` (if any)
/// the sample before it.
pub fn stats_json(id: &str, name: &str, prev: Option<&StatsSample>, cur: &StatsSample) -> Value {
    let networks: Map<String, Value> = cur
        .networks
        .iter()
        .map(|(k, n)| (k.clone(), json!(n)))
        .collect();
    let blkio: Vec<Value> = cur
        .blkio
        .iter()
        .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
        .collect();
    let mut pids = json!({"current": cur.pids_current});
    if cur.pids_limit > 0 {
        pids["limit"] = json!(cur.pids_limit);
    }
    json!({
        "name": format!("/{}", name.trim_start_matches('/')),
        "id": id,
        "read": time(Some(cur)),
        "preread": time(prev),
        "pids_stats": pids,
        "blkio_stats": {
            "io_service_bytes_recursive": blkio,
            "io_serviced_recursive": null, "io_queue_recursive": null,
            "io_service_time_recursive": null, "io_wait_time_recursive": null,
            "io_merged_recursive": null, "io_time_recursive": null, "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu(Some(cur)),
        "precpu_stats": cpu(prev),
        "memory_stats": {
            "usage": cur.memory_usage,
            "max_usage": cur.memory_max_usage,
            "stats": cur.memory_stats,
            "limit": cur.memory_limit,
        },
        "networks": networks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::NetStats;

    #[test]
    fn stats_document_has_dockers_shape() {
        let cur = StatsSample {
            read: (1_704_164_645, 0),
            cpu_total: 5,
            cpu_percpu: vec![2, 3],
            system_cpu: 100,
            online_cpus: 2,
            memory_usage: 10,
            memory_limit: 100,
            pids_current: 3,
            networks: [(
                "eth0".to_string(),
                NetStats {
                    rx_bytes: 42,
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        };
        let v = stats_json("abc", "web", None, &cur);
        assert_eq!(v["name"], "/web");
        // docker marshals times as RFC3339Nano: trailing zeros of the fraction dropped.
        assert_eq!(v["read"], "2024-01-02T03:04:05Z");
        assert_eq!(v["preread"], ZERO_TIME);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 5);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["percpu_usage"], json!([2, 3]));
        assert_eq!(v["cpu_stats"]["online_cpus"], 2);
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert_eq!(v["memory_stats"]["limit"], 100);
        assert_eq!(v["pids_stats"], json!({"current": 3}));
        assert_eq!(v["networks"]["eth0"]["rx_bytes"], 42);
        assert_eq!(v["networks"]["eth0"]["tx_dropped"], 0);
        let v2 = stats_json("abc", "web", Some(&cur), &cur);
        assert_eq!(v2["precpu_stats"]["system_cpu_usage"], 100);
    }
}
