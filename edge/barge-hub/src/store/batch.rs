//! Batched writes: the small unconditional writes every session makes (its pods' statuses,
//! its node record) reach etcd together, up to [`OPS_PER_TXN`] keys per transaction,
//! instead of one gRPC call and one raft entry each. A write waits only for what is
//! already queued, never for a timer: alone it goes at once; in a wave (10 000 edges
//! acking one change, then reporting its pods) a few hundred transactions carry it.
//!
//! A caller gets its answer once its own keys are written (so an edge is acked only after
//! the write is durable); callers that await each write before the next keep their keys in
//! order, which is how sessions use it.

use std::collections::BTreeSet;
use std::sync::Arc;

use etcd_client::{Client, Txn, TxnOp};
use tokio::sync::{mpsc, oneshot, Mutex};

/// Operations per transaction (etcd's default `--max-txn-ops` is 128).
pub const OPS_PER_TXN: usize = 100;

/// Transactions in flight at once (each writer sends one at a time).
const WRITERS: usize = 4;

/// One key's new value (None: delete it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

impl Write {
    pub fn put(key: String, value: Vec<u8>) -> Write {
        Write {
            key,
            value: Some(value),
        }
    }

    pub fn delete(key: String) -> Write {
        Write { key, value: None }
    }

    fn op(self) -> TxnOp {
        match self.value {
            Some(v) => TxnOp::put(self.key, v, None),
            None => TxnOp::delete(self.key, None),
        }
    }
}

struct Job {
    writes: Vec<Write>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The hub's batched writer (cheap to share; its writers stop when it is dropped).
pub struct Batcher {
    tx: mpsc::UnboundedSender<Job>,
}

impl Batcher {
    /// Start the writers on the current runtime.
    pub fn start(etcd: Client) -> Batcher {
        let (tx, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..WRITERS {
            tokio::spawn(writer(etcd.clone(), rx.clone()));
        }
        Batcher { tx }
    }

    /// Write `writes` (later ones win over earlier ones of the same key); Ok once they are
    /// in etcd. `what` names them in an error.
    pub async fn write(&self, what: &str, writes: Vec<Write>) -> crate::Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        let unavailable = |why: &str| crate::Error::Unavailable(format!("etcd ({what}): {why}"));
        self.tx
            .send(Job {
                writes: last_per_key(writes),
                done,
            })
            .map_err(|_| unavailable("the hub's writer stopped"))?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(unavailable(&e)),
            Err(_) => Err(unavailable("the hub's writer stopped")),
        }
    }
}

/// The writes with only the last of each key, in their order.
fn last_per_key(writes: Vec<Write>) -> Vec<Write> {
    let mut seen = BTreeSet::new();
    let mut out: Vec<Write> = writes
        .into_iter()
        .rev()
        .filter(|w| seen.insert(w.key.clone()))
        .collect();
    out.reverse();
    out
}

/// Take queued jobs into batches of at most [`OPS_PER_TXN`] keys (a job never shares a
/// transaction with another writing one of its keys: etcd refuses duplicate keys) and
/// write each batch; a job larger than a transaction goes alone, in several.
async fn writer(mut etcd: Client, rx: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>) {
    let mut carry: Option<Job> = None;
    loop {
        // A carried job goes without waiting for the queue: the writer waiting in `recv`
        // holds the lock while the queue is empty, and the carried job's caller sends nothing
        // until it is answered.
        let first = match carry.take() {
            Some(j) => j,
            None => match rx.lock().await.recv().await {
                Some(j) => j,
                None => return,
            },
        };
        let mut keys: BTreeSet<String> = first.writes.iter().map(|w| w.key.clone()).collect();
        let mut batch = vec![first];
        // More only from what is queued now (a busy lock means another writer waits on an
        // empty queue, or is taking from it).
        if let Ok(mut rx) = rx.try_lock() {
            while keys.len() < OPS_PER_TXN {
                let Ok(job) = rx.try_recv() else { break };
                let clash = job.writes.iter().any(|w| keys.contains(&w.key));
                if clash || keys.len() + job.writes.len() > OPS_PER_TXN {
                    carry = Some(job);
                    break;
                }
                keys.extend(job.writes.iter().map(|w| w.key.clone()));
                batch.push(job);
            }
        }
        let mut answers = Vec::with_capacity(batch.len());
        let mut ops: Vec<TxnOp> = Vec::with_capacity(keys.len());
        for job in batch {
            ops.extend(job.writes.into_iter().map(Write::op));
            answers.push(job.done);
        }
        let mut result = Ok(());
        let mut ops = ops.into_iter().peekable();
        while ops.peek().is_some() {
            let chunk: Vec<TxnOp> = ops.by_ref().take(OPS_PER_TXN).collect();
            if let Err(e) = etcd.txn(Txn::new().and_then(chunk)).await {
                result = Err(e.to_string());
                break;
            }
        }
        for done in answers {
            let _ = done.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_write_of_a_key_wins_in_order() {
        let w = |k: &str, v: &str| Write::put(k.into(), v.as_bytes().to_vec());
        assert_eq!(
            last_per_key(vec![
                w("a", "1"),
                w("b", "1"),
                w("a", "2"),
                Write::delete("c".into())
            ]),
            vec![w("b", "1"), w("a", "2"), Write::delete("c".into())]
        );
    }
}
