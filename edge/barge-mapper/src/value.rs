//! Property values between a driver and the twin: what a driver reads or writes
//! ([`Reading`]), formatted as the string a twin carries for the model's type (INT, FLOAT,
//! DOUBLE, BOOLEAN, STRING), and desired strings parsed back for a driver to write.

use barge_edge_proto::device::{ModelProperty, PropertyType};

/// A value as a driver sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    Number(f64),
    Bool(bool),
    Text(String),
}

/// Why a value cannot be formatted or parsed for a property.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("property {property}: {value:?} is not a valid {expected}")]
    WrongType {
        property: String,
        value: String,
        expected: &'static str,
    },
    #[error("property {property}: {reason}")]
    Refused { property: String, reason: String },
}

impl Reading {
    /// The value as a number (booleans 0/1), for drivers that store numbers.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Reading::Number(n) => Some(*n),
            Reading::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Reading::Text(t) => t.trim().parse().ok(),
        }
    }

    /// The value as a boolean (numbers: non-zero is true).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Reading::Number(n) => Some(*n != 0.0),
            Reading::Bool(b) => Some(*b),
            Reading::Text(t) => match t.trim() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
        }
    }
}

/// Format a reading as the twin string for `prop`'s type: INT rounds to an integer, FLOAT
/// and DOUBLE print the shortest exact decimal (`12.5`, `3`), BOOLEAN `true`/`false`.
pub fn format(prop: &ModelProperty, reading: &Reading) -> Result<String, ValueError> {
    let wrong = |expected| ValueError::WrongType {
        property: prop.name.clone(),
        value: format!("{reading:?}"),
        expected,
    };
    Ok(match prop.type_ {
        PropertyType::Int => {
            let n = reading.as_f64().ok_or_else(|| wrong("integer"))?;
            if !n.is_finite() {
                return Err(wrong("integer"));
            }
            format!("{}", n.round() as i64)
        }
        PropertyType::Float => {
            let n = reading.as_f64().ok_or_else(|| wrong("number"))?;
            if !n.is_finite() {
                return Err(wrong("finite number"));
            }
            format!("{}", n as f32)
        }
        PropertyType::Double => {
            let n = reading.as_f64().ok_or_else(|| wrong("number"))?;
            if !n.is_finite() {
                return Err(wrong("finite number"));
            }
            format!("{n}")
        }
        PropertyType::Boolean => {
            let b = reading.as_bool().ok_or_else(|| wrong("boolean"))?;
            b.to_string()
        }
        PropertyType::String | PropertyType::Bytes | PropertyType::Stream => match reading {
            Reading::Text(t) => t.clone(),
            Reading::Bool(b) => b.to_string(),
            Reading::Number(n) => format!("{n}"),
        },
    })
}

/// Parse a desired value for `prop`: checked against the model's type and range (the agent
/// checks too; a mapper never writes a value the model refuses).
pub fn parse_desired(prop: &ModelProperty, value: &str) -> Result<Reading, ValueError> {
    prop.check_value(value).map_err(|e| ValueError::Refused {
        property: prop.name.clone(),
        reason: e.to_string(),
    })?;
    let wrong = |expected| ValueError::WrongType {
        property: prop.name.clone(),
        value: value.to_string(),
        expected,
    };
    Ok(match prop.type_ {
        PropertyType::Int | PropertyType::Float | PropertyType::Double => {
            Reading::Number(value.trim().parse::<f64>().map_err(|_| wrong("number"))?)
        }
        PropertyType::Boolean => Reading::Bool(value.trim() == "true"),
        PropertyType::String | PropertyType::Bytes | PropertyType::Stream => {
            Reading::Text(value.to_string())
        }
    })
}

/// The model's numeric bounds (`minimum`/`maximum`), when both parse.
pub fn bounds(prop: &ModelProperty) -> Option<(f64, f64)> {
    let min = prop.minimum.as_deref()?.trim().parse::<f64>().ok()?;
    let max = prop.maximum.as_deref()?.trim().parse::<f64>().ok()?;
    (min <= max).then_some((min, max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use barge_edge_proto::device::AccessMode;

    fn prop(t: PropertyType) -> ModelProperty {
        ModelProperty {
            name: "p".into(),
            description: None,
            type_: t,
            access_mode: AccessMode::ReadWrite,
            minimum: Some("0".into()),
            maximum: Some("100".into()),
            unit: None,
        }
    }

    #[test]
    fn values_are_formatted_per_model_type() {
        let n = Reading::Number(12.5);
        assert_eq!(format(&prop(PropertyType::Int), &n).unwrap(), "13");
        assert_eq!(format(&prop(PropertyType::Float), &n).unwrap(), "12.5");
        assert_eq!(
            format(&prop(PropertyType::Double), &Reading::Number(3.0)).unwrap(),
            "3"
        );
        assert_eq!(
            format(&prop(PropertyType::Boolean), &Reading::Number(1.0)).unwrap(),
            "true"
        );
        assert_eq!(format(&prop(PropertyType::String), &n).unwrap(), "12.5");
        assert!(format(&prop(PropertyType::Int), &Reading::Text("x".into())).is_err());
    }

    #[test]
    fn desired_values_are_checked() {
        let p = prop(PropertyType::Int);
        assert_eq!(parse_desired(&p, "42").unwrap(), Reading::Number(42.0));
        assert!(parse_desired(&p, "101").is_err());
        assert!(parse_desired(&p, "abc").is_err());
        let b = prop(PropertyType::Boolean);
        assert_eq!(parse_desired(&b, "true").unwrap(), Reading::Bool(true));
        assert!(parse_desired(&b, "yes").is_err());
    }
}
