//! The virtual driver: a device simulated in memory, for demos and tests without hardware.
//!
//! Protocol name `virtual`; protocol configData is ignored. Visitor configData:
//! `{"generator": "randomWalk"|"sine"|"constant", "initial": "20", "periodMs": 60000}`.
//! Numbers stay within the model's `minimum`/`maximum` (0..100 when the model has none): a
//! bounded random walk (steps of at most 5 % of the range) or a sine over `periodMs`;
//! booleans flip now and then under `randomWalk`; strings keep `initial`. A written value
//! sticks: the property holds it from then on (the generator stops for it).

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use barge_edge_proto::device::{ModelProperty, PropertyType, ProtocolConfig};
use serde::Deserialize;
use serde_json::Value;

use crate::driver::{Driver, DriverError};
use crate::value::{bounds, Reading};

/// How a property's values are made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Generator {
    #[default]
    RandomWalk,
    Sine,
    Constant,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VisitorConfig {
    #[serde(default)]
    generator: Generator,
    #[serde(default)]
    initial: Option<Value>,
    #[serde(default)]
    period_ms: Option<u64>,
}

/// A property's generator, parsed.
#[derive(Debug, Clone)]
pub struct VirtualVisitor {
    generator: Generator,
    type_: PropertyType,
    min: f64,
    max: f64,
    initial: Reading,
    period_ms: f64,
}

/// A simulated device: the current value of each property.
#[derive(Debug)]
pub struct VirtualDriver {
    values: HashMap<String, Reading>,
    written: HashMap<String, Reading>,
    started: Instant,
    rng: u64,
}

impl VirtualDriver {
    /// xorshift64*: uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Driver for VirtualDriver {
    type Visitor = VirtualVisitor;
    const PROTOCOL: &'static str = "virtual";

    async fn connect(_device: &str, _config: &ProtocolConfig) -> Result<Self, DriverError> {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        Ok(VirtualDriver {
            values: HashMap::new(),
            written: HashMap::new(),
            started: Instant::now(),
            rng: seed | 1,
        })
    }

    fn visitor(
        property: &str,
        config: &Value,
        model: &ModelProperty,
    ) -> Result<VirtualVisitor, DriverError> {
        let cfg: VisitorConfig = if config.is_null() {
            VisitorConfig {
                generator: Generator::default(),
                initial: None,
                period_ms: None,
            }
        } else {
            serde_json::from_value(config.clone()).map_err(|e| {
                DriverError::Config(format!(
                    "property {property}: virtual visitor configData: {e}"
                ))
            })?
        };
        let (min, max) = bounds(model).unwrap_or((0.0, 100.0));
        let initial_text = cfg.initial.as_ref().map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let initial = match model.type_ {
            PropertyType::Int | PropertyType::Float | PropertyType::Double => {
                let n = match &initial_text {
                    Some(t) => t.trim().parse::<f64>().map_err(|_| {
                        DriverError::Config(format!(
                            "property {property}: initial {t:?} is not a number"
                        ))
                    })?,
                    None => (min + max) / 2.0,
                };
                Reading::Number(n.clamp(min, max))
            }
            PropertyType::Boolean => Reading::Bool(initial_text.as_deref() == Some("true")),
            _ => Reading::Text(initial_text.unwrap_or_default()),
        };
        Ok(VirtualVisitor {
            generator: cfg.generator,
            type_: model.type_,
            min,
            max,
            initial,
            period_ms: cfg.period_ms.unwrap_or(60_000).max(1) as f64,
        })
    }

    async fn read(&mut self, property: &str, v: &VirtualVisitor) -> Result<Reading, DriverError> {
        if let Some(w) = self.written.get(property) {
            return Ok(w.clone());
        }
        let prev = self
            .values
            .get(property)
            .cloned()
            .unwrap_or_else(|| v.initial.clone());
        let next = match (v.generator, &prev) {
            (Generator::Constant, _) => prev,
            (Generator::Sine, Reading::Number(_)) => {
                let t = self.started.elapsed().as_millis() as f64;
                let phase = (t / v.period_ms) * std::f64::consts::TAU;
                Reading::Number(v.min + (v.max - v.min) * (0.5 + 0.5 * phase.sin()))
            }
            (_, Reading::Number(n)) => {
                // The walk itself stays unrounded (INT rounds only what is reported), so
                // steps smaller than 1 still move it.
                let step = (v.max - v.min) * 0.05 * (2.0 * self.uniform() - 1.0);
                Reading::Number((n + step).clamp(v.min, v.max))
            }
            (_, Reading::Bool(b)) => Reading::Bool(if self.uniform() < 0.1 { !b } else { *b }),
            (_, Reading::Text(_)) => prev,
        };
        self.values.insert(property.to_string(), next.clone());
        Ok(match next {
            Reading::Number(x) if v.type_ == PropertyType::Int => {
                Reading::Number(x.round().clamp(v.min.ceil(), v.max.floor()))
            }
            other => other,
        })
    }

    async fn write(
        &mut self,
        property: &str,
        _v: &VirtualVisitor,
        value: &Reading,
    ) -> Result<(), DriverError> {
        self.written.insert(property.to_string(), value.clone());
        Ok(())
    }
}
