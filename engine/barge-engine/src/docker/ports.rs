//! Ports as docker shows them: inspect's `NetworkSettings.Ports` map, `docker ps`'s PORTS text
//! and the list's `Ports` array (made next to the port bindings, in `network::ports`, and
//! `list`).

pub use super::list::ports_list;
pub use crate::network::ports::{docker_ports_map, format_ps};
