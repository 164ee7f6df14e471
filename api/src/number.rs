//! A number that manifests may spell as a JSON number or as a string holding one.
//!
//! OpenELB inherited GoBGP's Go types, whose timers are tagged `json:",string"`: manifests write
//! `holdTime: "90"`. Hand-written manifests often write `holdTime: 90`. Both must load; a
//! string must be digits only, the same rule the CRD's CEL applies
//! (`api::validate::TIMERS_RULE`).

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative integer accepted as `90` or `"90"` (or the JSON number `90.0`).
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

/// The longest string a [`Number`] takes: the digits of `u64::MAX`. Spec fields that CEL rules
/// read carry it as their `maxLength`, which bounds the rules' cost.
pub const MAX_DIGITS: usize = 20;

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

    // Digits only, as the CRD's CEL rules take a string (`^[0-9]+$`): no sign, no space, no
    // fraction, so a manifest loads in standalone mode exactly when the API server takes it.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Number, E> {
        if !v.is_empty() && v.len() <= MAX_DIGITS && v.bytes().all(|b| b.is_ascii_digit()) {
            return v
                .parse::<u64>()
                .map(Number)
                .map_err(|_| E::custom(format!("{v:?} is too large")));
        }
        Err(E::custom(format!(
            "expected a whole number of digits, got {v:?}"
        )))
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

/// A number of seconds in a spec (timers, graceful restart): a [`Number`] whose schema also
/// says `maxLength` [`MAX_DIGITS`], which bounds the cost of the CEL rules that read it as a
/// string (`api::validate::TIMERS_RULE`, `GRACEFUL_RESTART_RULE`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seconds(pub Number);

impl Seconds {
    /// The value.
    pub fn get(self) -> u64 {
        self.0.get()
    }
}

impl From<u64> for Seconds {
    fn from(v: u64) -> Self {
        Seconds(Number(v))
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl JsonSchema for Seconds {
    fn schema_name() -> Cow<'static, str> {
        "SecondsOrString".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "x-kubernetes-int-or-string": true,
            "maxLength": MAX_DIGITS
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_strings_and_numbers() {
        for text in ["90", "\"90\"", "90.0"] {
            let n: Number = serde_json::from_str(text).expect(text);
            assert_eq!(n, Number(90), "{text}");
        }
        let y: Number = serde_yaml::from_str("'30'").expect("yaml string");
        assert_eq!(y.get(), 30);
    }

    #[test]
    fn rejects_garbage() {
        for text in [
            "-1", "\"abc\"", "1.5", "\"-3\"", "true", "\" 90 \"", "\"90.0\"", "\"+5\"", "\"\"",
        ] {
            assert!(serde_json::from_str::<Number>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn serializes_as_integer() {
        assert_eq!(serde_json::to_string(&Number(7)).expect("ser"), "7");
    }
}
