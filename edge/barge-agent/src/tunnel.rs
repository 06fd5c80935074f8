//! Tunnels: the hub's Exec and Logs streams on the session.

use std::sync::Arc;

use barge_edge_proto::wire::{EdgeMsg, HubMsg};
use tokio::sync::mpsc;

use crate::edged::Workloads;

/// The open streams of one session.
pub struct Tunnels {
    #[allow(dead_code)]
    work: Arc<dyn Workloads>,
    out: mpsc::Sender<EdgeMsg>,
}

impl Tunnels {
    pub fn new(work: Arc<dyn Workloads>, out: mpsc::Sender<EdgeMsg>) -> Tunnels {
        Tunnels { work, out }
    }

    /// Handle an Exec, Logs, Data or Cancel frame.
    pub fn handle(&mut self, m: HubMsg) {
        let stream = match m {
            HubMsg::Exec { stream, .. } | HubMsg::Logs { stream, .. } => stream,
            _ => return,
        };
        let _ = self.out.try_send(EdgeMsg::StreamEnd {
            stream,
            exit_code: None,
            error: Some("this agent does not serve exec and logs yet".into()),
        });
    }
}
