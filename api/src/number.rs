//! A number that manifests may spell as a JSON number or as a string holding one.
//!
//! OpenELB inherited GoBGP's Go types, whose timers are tagged `json:",string"`: manifests write
//! `holdTime: "90"`. Hand-written manifests often write `holdTime: 90`. Both must load.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative integer accepted as `90` or `"90"` (or `90.0` / `"90.0"`).
///
/// It serializes as a plain JSON integer; the CRD schema marks it `x-kubernetes-int-or-string`
/// so the API server keeps either spelling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Number(pub u64);

impl Number {
    /// The value.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for Number {
    fn from(v: u64) -> Self {
        Number(v)
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

fn from_float<E: de::Error>(v: f64) -> Result<Number, E> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= u64::MAX as f64 {
        // Checked above: finite, non-negative, integral and in range.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(Number(v as u64))
    } else {
        Err(E::custom(format!(
            "expected a non-negative whole number, got {v}"
        )))
    }
}

struct NumberVisitor;

impl Visitor<'_> for NumberVisitor {
    type Value = Number;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative whole number, or a string holding one")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
        Ok(Number(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
        u64::try_from(v)
            .map(Number)
            .map_err(|_| E::custom(format!("expected a non-negative number, got {v}")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
        from_float(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Number, E> {
        let t = v.trim();
        if let Ok(n) = t.parse::<u64>() {
            return Ok(Number(n));
        }
        match t.parse::<f64>() {
            Ok(f) => from_float(f),
            Err(_) => Err(E::custom(format!("expected a number, got {v:?}"))),
        }
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberVisitor)
    }
}

impl JsonSchema for Number {
    fn schema_name() -> Cow<'static, str> {
        "NumberOrString".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "x-kubernetes-int-or-string": true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_strings_and_numbers() {
        for text in ["90", "\"90\"", "90.0", "\"90.0\"", "\" 90 \""] {
            let n: Number = serde_json::from_str(text).expect(text);
            assert_eq!(n, Number(90), "{text}");
        }
        let y: Number = serde_yaml::from_str("'30'").expect("yaml string");
        assert_eq!(y.get(), 30);
    }

    #[test]
    fn rejects_garbage() {
        for text in ["-1", "\"abc\"", "1.5", "\"-3\"", "true"] {
            assert!(serde_json::from_str::<Number>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn serializes_as_integer() {
        assert_eq!(serde_json::to_string(&Number(7)).expect("ser"), "7");
    }
}
