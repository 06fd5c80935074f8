//! The protocol driver interface: a driver connects to one device from its `spec.protocol`
//! configData, turns each property's visitor configData into a typed address, reads a
//! property and writes a desired value. One driver value is one device connection; the
//! device's task owns it (no sharing, no locks).

use std::future::Future;

use barge_edge_proto::device::{ModelProperty, ProtocolConfig};
use serde_json::Value;

use crate::value::Reading;

/// Why a driver call failed. [`DriverError::Connection`] makes the device task drop the
/// connection, report the device offline and reconnect; the others fail one call only.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Bad protocol or visitor configData (the device or property is skipped until its spec
    /// changes).
    #[error("{0}")]
    Config(String),
    /// The connection is lost, refused or timed out.
    #[error("{0}")]
    Connection(String),
    /// The device answered but refused the request (e.g. a Modbus exception), or the value
    /// cannot be written to this address.
    #[error("{0}")]
    Device(String),
}

/// A device protocol.
pub trait Driver: Send + Sized + 'static {
    /// A property's address on the device, parsed from its visitor configData.
    type Visitor: Send + Sync + std::fmt::Debug + 'static;

    /// The protocol name in `spec.protocol.protocolName` and `--protocol`.
    const PROTOCOL: &'static str;

    /// Connect to the device `device` (its id, for messages) described by `config`.
    fn connect(
        device: &str,
        config: &ProtocolConfig,
    ) -> impl Future<Output = Result<Self, DriverError>> + Send;

    /// Parse a property's visitor configData (`model` gives its type and bounds).
    fn visitor(
        property: &str,
        config: &Value,
        model: &ModelProperty,
    ) -> Result<Self::Visitor, DriverError>;

    /// Read the property at `visitor`.
    fn read(
        &mut self,
        property: &str,
        visitor: &Self::Visitor,
    ) -> impl Future<Output = Result<Reading, DriverError>> + Send;

    /// Write `value` to the property at `visitor`.
    fn write(
        &mut self,
        property: &str,
        visitor: &Self::Visitor,
        value: &Reading,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;
}
