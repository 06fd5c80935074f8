//! The hub's etcd lease: `hubs/<id>`, `conns/<node>` and the controller lock are attached
//! to it, so they vanish ~TTL seconds after the hub dies.

use std::time::Duration;

use anyhow::Context as _;
use etcd_client::Client;

/// Lease time to live.
pub const TTL_SECS: i64 = 10;

/// Grant the lease and keep it alive in a background task (every TTL/3). When etcd says the
/// lease is gone (expired while the hub was cut off), the task exits the process: every
/// lease-attached record of this hub is gone and another hub may hold its nodes by now.
pub async fn grant(etcd: &Client) -> anyhow::Result<i64> {
    let mut c = etcd.clone();
    let lease = c
        .lease_grant(TTL_SECS, None)
        .await
        .context("etcd: granting the hub's lease")?
        .id();
    tokio::spawn(keep_alive(etcd.clone(), lease));
    Ok(lease)
}

async fn keep_alive(mut etcd: Client, lease: i64) {
    let every = Duration::from_secs((TTL_SECS as u64 / 3).max(1));
    loop {
        let (mut keeper, mut stream) = match etcd.lease_keep_alive(lease).await {
            Ok(ks) => ks,
            Err(e) => {
                tracing::warn!("etcd lease {lease:x}: keepalive stream: {e}; retrying");
                tokio::time::sleep(every).await;
                continue;
            }
        };
        loop {
            if let Err(e) = keeper.keep_alive().await {
                tracing::warn!("etcd lease {lease:x}: keepalive: {e}");
                break;
            }
            match stream.message().await {
                Ok(Some(resp)) if resp.ttl() <= 0 => {
                    tracing::error!(
                        "etcd lease {lease:x} expired: this hub's records are gone; exiting"
                    );
                    std::process::exit(1);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("etcd lease {lease:x}: keepalive answer: {e}");
                    break;
                }
            }
            tokio::time::sleep(every).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
