//! barge's device mappers (KubeEdge's mapper role): a framework that reads devices'
//! properties on a schedule into their twins and writes desired values to the devices,
//! talking to the edge agent only through the MQTT EventBus
//! ([`barge_edge_proto::device::mqtt`]), with two drivers: Modbus TCP ([`modbus`]) and a
//! simulated device for demos ([`virtual_device`]).
#![forbid(unsafe_code)]

pub mod bus;
pub mod config;
pub mod device;
pub mod driver;
pub mod mapper;
pub mod modbus;
pub mod value;
pub mod virtual_device;
