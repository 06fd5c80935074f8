//! The Modbus TCP driver (KubeEdge modbus mapper's config shapes).
//!
//! Protocol configData: `{"ip": "127.0.0.1", "port": 502, "slaveID": 1, "timeout": 2000}`
//! (`timeout` in ms per request, default 2000). Visitor configData: `{"register":
//! "CoilRegister"|"DiscreteInputRegister"|"HoldingRegister"|"InputRegister", "offset": 0,
//! "limit": 1, "scale": 1.0, "isSwap": false, "isRegisterSwap": false}`.
//!
//! Registers hold an unsigned big-endian integer of `limit` × 16 bits (limit 1 to 4), after
//! `isRegisterSwap` (reverse the register order) and `isSwap` (swap the two bytes of each
//! register), times `scale`. With a FLOAT model type and limit 2, or DOUBLE and limit 4, the
//! bits are an IEEE 754 number instead (then times `scale`). Coils and discrete inputs read
//! as booleans (the first of `limit` bits). Writes go to holding registers (the value divided
//! by `scale`, rounded, encoded the same way) and coils; the other two are read-only.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use barge_edge_proto::device::{ModelProperty, PropertyType, ProtocolConfig};
use serde::Deserialize;
use serde_json::Value;
use tokio_modbus::client::{Context, Reader, Writer};
use tokio_modbus::Slave;

use crate::driver::{Driver, DriverError};
use crate::value::Reading;

/// A Modbus register table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Register {
    CoilRegister,
    DiscreteInputRegister,
    HoldingRegister,
    InputRegister,
}

/// `spec.protocol.configData` of a Modbus TCP device.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TcpConfig {
    ip: String,
    #[serde(deserialize_with = "number_or_string")]
    port: u16,
    #[serde(
        rename = "slaveID",
        default = "one",
        deserialize_with = "number_or_string"
    )]
    slave_id: u8,
    #[serde(default)]
    timeout: Option<u64>,
}

fn one() -> u8 {
    1
}

/// KubeEdge manifests write numbers both ways (`port: 502`, `port: "502"`).
fn number_or_string<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr + TryFrom<u64>,
{
    use serde::de::Error;
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| D::Error::custom(format!("{n} is out of range"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| D::Error::custom(format!("{s:?} is not a number"))),
        other => Err(D::Error::custom(format!("{other} is not a number"))),
    }
}

/// A property's visitor configData, parsed.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModbusVisitor {
    pub register: Register,
    #[serde(deserialize_with = "number_or_string")]
    pub offset: u16,
    #[serde(default = "one_u16", deserialize_with = "number_or_string")]
    pub limit: u16,
    #[serde(default = "one_f64")]
    pub scale: f64,
    #[serde(default)]
    pub is_swap: bool,
    #[serde(default)]
    pub is_register_swap: bool,
    /// IEEE 754 decoding (set from the model type, not from configData).
    #[serde(skip)]
    float: Option<PropertyType>,
}

fn one_u16() -> u16 {
    1
}
fn one_f64() -> f64 {
    1.0
}

impl ModbusVisitor {
    fn what(&self, device: &str, property: &str) -> String {
        format!(
            "device {device}, property {property}, {:?} at offset {}",
            self.register, self.offset
        )
    }

    /// Registers (as read) to a number.
    fn decode(&self, words: &[u16]) -> f64 {
        let words = self.arrange(words);
        let mut bits: u64 = 0;
        for w in &words {
            bits = (bits << 16) | u64::from(*w);
        }
        let raw = match (self.float, words.len()) {
            (Some(PropertyType::Float), 2) => f64::from(f32::from_bits(bits as u32)),
            (Some(PropertyType::Double), 4) => f64::from_bits(bits),
            _ => bits as f64,
        };
        raw * self.scale
    }

    /// A number to registers (as written); None when it does not fit.
    fn encode(&self, value: f64) -> Option<Vec<u16>> {
        let raw = value / self.scale;
        let n = usize::from(self.limit);
        let bits: u64 = match (self.float, n) {
            (Some(PropertyType::Float), 2) => u64::from((raw as f32).to_bits()),
            (Some(PropertyType::Double), 4) => raw.to_bits(),
            _ => {
                let r = raw.round();
                let max = if n >= 4 {
                    u64::MAX as f64
                } else {
                    ((1u64 << (16 * n)) - 1) as f64
                };
                if !(0.0..=max).contains(&r) {
                    return None;
                }
                r as u64
            }
        };
        let words: Vec<u16> = (0..n)
            .rev()
            .map(|i| ((bits >> (16 * i)) & 0xffff) as u16)
            .collect();
        // Both swaps are their own inverse.
        Some(self.arrange(&words))
    }

    fn arrange(&self, words: &[u16]) -> Vec<u16> {
        let mut w: Vec<u16> = words.to_vec();
        if self.is_register_swap {
            w.reverse();
        }
        if self.is_swap {
            for x in &mut w {
                *x = x.swap_bytes();
            }
        }
        w
    }
}

/// One Modbus TCP connection to one slave.
pub struct ModbusDriver {
    device: String,
    addr: SocketAddr,
    ctx: Context,
    timeout: Duration,
}

impl std::fmt::Debug for ModbusDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModbusDriver({} at {})", self.device, self.addr)
    }
}

/// A tokio-modbus call's nested result, with `what` in the message.
fn settle<T>(
    what: &str,
    r: Result<tokio_modbus::Result<T>, tokio::time::error::Elapsed>,
) -> Result<T, DriverError> {
    match r {
        Err(_) => Err(DriverError::Connection(format!("{what}: timed out"))),
        Ok(Err(e)) => Err(DriverError::Connection(format!("{what}: {e}"))),
        Ok(Ok(Err(code))) => Err(DriverError::Device(format!(
            "{what}: the device answered with exception {code:?}"
        ))),
        Ok(Ok(Ok(v))) => Ok(v),
    }
}

impl Driver for ModbusDriver {
    type Visitor = ModbusVisitor;
    const PROTOCOL: &'static str = "modbus";

    async fn connect(device: &str, config: &ProtocolConfig) -> Result<Self, DriverError> {
        let cfg: TcpConfig = serde_json::from_value(config.config_data.clone()).map_err(|e| {
            DriverError::Config(format!("device {device}: modbus protocol configData: {e}"))
        })?;
        let addr = (cfg.ip.as_str(), cfg.port)
            .to_socket_addrs()
            .map_err(|e| {
                DriverError::Config(format!(
                    "device {device}: address {}:{}: {e}",
                    cfg.ip, cfg.port
                ))
            })?
            .next()
            .ok_or_else(|| {
                DriverError::Config(format!(
                    "device {device}: address {}:{} resolves to nothing",
                    cfg.ip, cfg.port
                ))
            })?;
        let timeout = Duration::from_millis(cfg.timeout.unwrap_or(2000).max(1));
        let ctx = tokio::time::timeout(
            timeout,
            tokio_modbus::client::tcp::connect_slave(addr, Slave(cfg.slave_id)),
        )
        .await
        .map_err(|_| {
            DriverError::Connection(format!("device {device}: connect to {addr}: timed out"))
        })?
        .map_err(|e| DriverError::Connection(format!("device {device}: connect to {addr}: {e}")))?;
        Ok(ModbusDriver {
            device: device.to_string(),
            addr,
            ctx,
            timeout,
        })
    }

    fn visitor(
        property: &str,
        config: &Value,
        model: &ModelProperty,
    ) -> Result<ModbusVisitor, DriverError> {
        let mut v: ModbusVisitor = serde_json::from_value(config.clone()).map_err(|e| {
            DriverError::Config(format!(
                "property {property}: modbus visitor configData: {e}"
            ))
        })?;
        if v.limit == 0
            || (v.limit > 4
                && !matches!(
                    v.register,
                    Register::CoilRegister | Register::DiscreteInputRegister
                ))
        {
            return Err(DriverError::Config(format!(
                "property {property}: limit {} (registers: 1 to 4)",
                v.limit
            )));
        }
        if !v.scale.is_finite() || v.scale == 0.0 {
            return Err(DriverError::Config(format!(
                "property {property}: scale {} (must be a non-zero number)",
                v.scale
            )));
        }
        if matches!(model.type_, PropertyType::Float | PropertyType::Double) {
            v.float = Some(model.type_);
        }
        Ok(v)
    }

    async fn read(&mut self, property: &str, v: &ModbusVisitor) -> Result<Reading, DriverError> {
        let what = v.what(&self.device, property);
        let t = self.timeout;
        Ok(match v.register {
            Register::CoilRegister => {
                let bits = settle(
                    &what,
                    tokio::time::timeout(t, self.ctx.read_coils(v.offset, v.limit)).await,
                )?;
                Reading::Bool(bits.first().copied().unwrap_or(false))
            }
            Register::DiscreteInputRegister => {
                let bits = settle(
                    &what,
                    tokio::time::timeout(t, self.ctx.read_discrete_inputs(v.offset, v.limit)).await,
                )?;
                Reading::Bool(bits.first().copied().unwrap_or(false))
            }
            Register::HoldingRegister => {
                let words = settle(
                    &what,
                    tokio::time::timeout(t, self.ctx.read_holding_registers(v.offset, v.limit))
                        .await,
                )?;
                Reading::Number(v.decode(&words))
            }
            Register::InputRegister => {
                let words = settle(
                    &what,
                    tokio::time::timeout(t, self.ctx.read_input_registers(v.offset, v.limit)).await,
                )?;
                Reading::Number(v.decode(&words))
            }
        })
    }

    async fn write(
        &mut self,
        property: &str,
        v: &ModbusVisitor,
        value: &Reading,
    ) -> Result<(), DriverError> {
        let what = v.what(&self.device, property);
        let t = self.timeout;
        match v.register {
            Register::CoilRegister => {
                let b = value.as_bool().ok_or_else(|| {
                    DriverError::Device(format!("{what}: {value:?} is not a boolean"))
                })?;
                settle(
                    &what,
                    tokio::time::timeout(t, self.ctx.write_single_coil(v.offset, b)).await,
                )
            }
            Register::HoldingRegister => {
                let n = value.as_f64().ok_or_else(|| {
                    DriverError::Device(format!("{what}: {value:?} is not a number"))
                })?;
                let words = v.encode(n).ok_or_else(|| {
                    DriverError::Device(format!(
                        "{what}: {n} does not fit {} register(s) with scale {}",
                        v.limit, v.scale
                    ))
                })?;
                settle(
                    &what,
                    tokio::time::timeout(t, self.ctx.write_multiple_registers(v.offset, &words))
                        .await,
                )
            }
            Register::DiscreteInputRegister | Register::InputRegister => Err(DriverError::Device(
                format!("{what}: this register table is read-only"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visitor(limit: u16, scale: f64, swap: bool, rswap: bool) -> ModbusVisitor {
        ModbusVisitor {
            register: Register::HoldingRegister,
            offset: 0,
            limit,
            scale,
            is_swap: swap,
            is_register_swap: rswap,
            float: None,
        }
    }

    #[test]
    fn registers_decode_with_scale_and_swaps() {
        assert_eq!(visitor(1, 0.1, false, false).decode(&[235]), 23.5);
        assert_eq!(
            visitor(2, 1.0, false, false).decode(&[0x0001, 0x0002]),
            65538.0
        );
        assert_eq!(
            visitor(2, 1.0, false, true).decode(&[0x0002, 0x0001]),
            65538.0
        );
        assert_eq!(
            visitor(1, 1.0, true, false).decode(&[0x3412]),
            0x1234 as f64
        );
        let mut f = visitor(2, 1.0, false, false);
        f.float = Some(PropertyType::Float);
        let bits = 1.5f32.to_bits();
        assert_eq!(f.decode(&[(bits >> 16) as u16, bits as u16]), 1.5);
        for v in [visitor(2, 0.5, true, true), f] {
            let words = v.encode(1234.5).unwrap();
            assert_eq!(v.decode(&words), 1234.5);
        }
        assert!(visitor(1, 1.0, false, false).encode(70000.0).is_none());
        assert!(visitor(1, 1.0, false, false).encode(-1.0).is_none());
    }

    #[test]
    fn visitor_config_is_kubeedge_shaped() {
        let model: ModelProperty = serde_json::from_str(r#"{"name":"t","type":"INT"}"#).unwrap();
        let v = ModbusDriver::visitor(
            "t",
            &serde_json::json!({"register":"HoldingRegister","offset":"3","limit":2,"scale":0.1,"isSwap":true}),
            &model,
        )
        .unwrap();
        assert_eq!(
            (v.register, v.offset, v.limit, v.is_swap),
            (Register::HoldingRegister, 3, 2, true)
        );
        let err = ModbusDriver::visitor(
            "t",
            &serde_json::json!({"register":"Nope","offset":1}),
            &model,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("property t"), "{err}");
    }
}
