//! A number that manifests may spell as a JSON number or as a string holding one.
//!
//! OpenELB inherited GoBGP's Go types, whose timers are tagged `json:",string"`: manifests write
//! `holdTime: "90"`. Hand-written manifests often write `holdTime: 90`. Both must load, and so
//! must any spelling an older CRD let into the API server; [`Seconds`] says whether a spec's
//! spelling is the one the admission rules take (`api::validate::TIMERS_RULE`).

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative integer accepted as `90` or `"90"` (or `90.0` / `"90.0"` / `" 90 "`).
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

/// The longest string of digits the admission rules take for [`Seconds`]: the digits of
/// `u64::MAX`. It is their schema's `maxLength`, which bounds the cost of the CEL rules.
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

    // Lenient (`" 90 "`, `"90.0"` load): an object the API server stored under an older CRD
    // must never fail to load, which would stop a reflector. Whether a spec's spelling is the
    // one the rules take is [`Seconds::is_canonical`]'s business.
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

/// A number of seconds in a spec (timers, graceful restart): loads as leniently as a
/// [`Number`], and remembers whether it was spelled as the admission rules take it (a JSON
/// integer, or a string of digits: `api::validate::TIMERS_RULE`, `GRACEFUL_RESTART_RULE`).
/// Its schema also says `maxLength` [`MAX_DIGITS`], which bounds those rules' cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seconds {
    value: Number,
    canonical: bool,
}

impl Seconds {
    /// The value.
    pub fn get(self) -> u64 {
        self.value.get()
    }

    /// Whether it was written as the CRD's rules take it: a JSON integer, or a string of at
    /// most [`MAX_DIGITS`] characters of digits, with spaces around and an optional `.0`
    /// (`"90"`, `" 90 "`, `"90.0"`, and the JSON number `90.0`); `false` for `"1e2"`, `"+90"`
    /// or `"90."`.
    pub fn is_canonical(self) -> bool {
        self.canonical
    }
}

impl From<u64> for Seconds {
    fn from(v: u64) -> Self {
        Seconds {
            value: Number(v),
            canonical: true,
        }
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

/// `^ *[0-9]+([.]0+)? *$`: digits, spaces around them, and an optional fraction of zeros
/// (the spellings manifests use; `"1e2"` or `"+90"` are not).
fn is_whole_seconds(v: &str) -> bool {
    let t = v.trim_matches(' ');
    let (whole, fraction) = t.split_once('.').unwrap_or((t, ""));
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && (!t.contains('.') || (!fraction.is_empty() && fraction.bytes().all(|b| b == b'0')))
}

struct SecondsVisitor;

impl Visitor<'_> for SecondsVisitor {
    type Value = Seconds;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        NumberVisitor.expecting(f)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
        Ok(Seconds::from(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
        NumberVisitor.visit_i64(v).map(|value| Seconds {
            value,
            canonical: true,
        })
    }

    // A whole JSON number such as `90.0` is an integer to the API server too.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
        NumberVisitor.visit_f64(v).map(|value| Seconds {
            value,
            canonical: true,
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
        let canonical = v.len() <= MAX_DIGITS && is_whole_seconds(v);
        NumberVisitor
            .visit_str(v)
            .map(|value| Seconds { value, canonical })
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecondsVisitor)
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

    /// Seconds load as leniently as a Number (a stored object never fails to load) and say
    /// whether the spelling is the one the CRD's rules take.
    #[test]
    fn seconds_know_their_spelling() {
        for (text, canonical) in [
            ("90", true),
            ("\"90\"", true),
            ("\"000090\"", true),
            ("\"90.0\"", true),
            ("\" 90 \"", true),
            ("\"1e2\"", false),
            ("\"+90\"", false),
            ("\"90.\"", false),
            ("\"\\t90\"", false),
        ] {
            let s: Seconds = serde_json::from_str(text).expect(text);
            assert_eq!(s.is_canonical(), canonical, "{text}");
        }
        assert_eq!(serde_json::to_string(&Seconds::from(7)).expect("ser"), "7");
    }

    #[test]
    fn serializes_as_integer() {
        assert_eq!(serde_json::to_string(&Number(7)).expect("ser"), "7");
    }
}
