//! GetContainerEvents: the CRI containers' create, start, stop (die) and delete (destroy)
//! events, followed live from the engine's event journal (Engine::subscribe), in order.

use std::time::Duration;

use barge_engine::events::{Action, Event, Filters, Next, SubscribeOptions, Type};
use barge_engine::Engine;
use tokio::sync::mpsc;
use tonic::Status;

use crate::proto::{ContainerEventResponse, ContainerEventType};

fn event_type(a: Action) -> Option<ContainerEventType> {
    Some(match a {
        Action::Create => ContainerEventType::ContainerCreatedEvent,
        Action::Start => ContainerEventType::ContainerStartedEvent,
        Action::Die => ContainerEventType::ContainerStoppedEvent,
        Action::Destroy => ContainerEventType::ContainerDeletedEvent,
        _ => return None,
    })
}

/// The CRI event for a journal event (None: not a CRI container's, or not a CRI kind).
fn translate(e: &Engine, ev: &Event) -> Option<ContainerEventResponse> {
    if ev.typ != Type::Container {
        return None;
    }
    let kind = event_type(ev.action)?;
    let sandbox = ev.actor.attributes.get(crate::labels::SANDBOX)?;
    let pod_sandbox_status = e
        .pod_inspect(sandbox)
        .ok()
        .map(|i| crate::sandbox::status_of(&i));
    let containers_statuses = match e.db.find(&ev.actor.id) {
        Ok(rec) if kind != ContainerEventType::ContainerDeletedEvent => {
            vec![crate::container::status_of(e, &rec)]
        }
        _ => Vec::new(),
    };
    Some(ContainerEventResponse {
        container_id: ev.actor.id.clone(),
        container_event_type: kind as i32,
        created_at: ev.time_nano,
        pod_sandbox_status,
        containers_statuses,
    })
}

/// Follow the journal on a blocking thread until the client goes away.
pub fn follow(
    e: std::sync::Arc<Engine>,
) -> Result<mpsc::Receiver<Result<ContainerEventResponse, Status>>, Status> {
    let opts = SubscribeOptions {
        since: None,
        until: None,
        filters: Filters {
            types: vec![Type::Container],
            ..Default::default()
        },
    };
    let mut sub = crate::status::engine(e.subscribe(&opts))?;
    let (tx, rx) = mpsc::channel(64);
    tokio::task::spawn_blocking(move || loop {
        if tx.is_closed() {
            return;
        }
        match sub.next_timeout(Duration::from_secs(1)) {
            Ok(Next::Event(ev)) => {
                if let Some(r) = translate(&e, &ev) {
                    if tx.blocking_send(Ok(r)).is_err() {
                        return;
                    }
                }
            }
            Ok(Next::Timeout) => {}
            Ok(Next::End) => return,
            Err(err) => {
                let _ = tx.blocking_send(Err(crate::status::from_engine(err)));
                return;
            }
        }
    });
    Ok(rx)
}
