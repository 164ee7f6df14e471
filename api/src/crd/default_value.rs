//! Does a value satisfy a CRD schema node, as the API server validates every `default` when a
//! CRD is created (apiextensions-apiserver `pkg/apiserver/schema/defaulting/validation.go`)?
//!
//! A structural re-implementation of the OpenAPI checks Kubernetes applies to a default as
//! written (nested defaults are not applied first, so this is never more lenient than the
//! server): type (with `nullable` and `x-kubernetes-int-or-string`), `enum`, numeric bounds and
//! the range of the integer format, string length in characters, `pattern`, the string formats
//! it can check, list and map sizes, `required`, pruning (a default must not carry fields the
//! schema would drop), and `allOf`/`anyOf`/`oneOf`/`not`. What it cannot evaluate — CEL rules and
//! other string formats — it reports, so a default it cannot vouch for never passes silently.
//!
//! It knows schemas and JSON values only, nothing of Berth's kinds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::{Number, Value};

/// Why `value` does not satisfy `schema`, one message per problem; empty when it does.
/// Messages inside the value start with their path in it (`.messages.sent: ...`, `[2]: ...`).
pub fn problems(value: &Value, schema: &JSONSchemaProps) -> Vec<String> {
    let mut out = Vec::new();
    check(value, schema, "", &mut out);
    out
}

fn check(value: &Value, schema: &JSONSchemaProps, at: &str, out: &mut Vec<String>) {
    // Problems of this node itself, prefixed with `at` once at the end.
    let mut here = Vec::new();
    if schema
        .x_kubernetes_validations
        .as_ref()
        .is_some_and(|r| !r.is_empty())
    {
        here.push("is also checked by CEL rules (x-kubernetes-validations), which this check cannot evaluate: drop the default or prove it against a real API server and extend this check".into());
    }
    if value.is_null() {
        if schema.nullable != Some(true) {
            here.push("is null, but the schema is not nullable".into());
        }
    } else if let Some(message) = type_mismatch(value, schema) {
        here.push(message);
    } else {
        if let Some(values) = &schema.enum_
            && !values.iter().any(|e| same_value(&e.0, value))
        {
            let list: Vec<String> = values.iter().map(|e| e.0.to_string()).collect();
            here.push(format!("{value} is not one of {}", list.join(", ")));
        }
        match value {
            Value::Number(n) => number_problems(n, schema, &mut here),
            Value::String(s) => string_problems(s, schema, &mut here),
            _ => {}
        }
    }
    let prefix = prefix(at);
    out.extend(here.into_iter().map(|m| format!("{prefix}{m}")));
    if value.is_null() || type_mismatch(value, schema).is_some() {
        return;
    }
    match value {
        Value::Array(items) => array_problems(items, schema, at, out),
        Value::Object(map) => object_problems(map, schema, at, out),
        _ => {}
    }
    combinator_problems(value, schema, at, out);
}

/// `"{at}: "`, or nothing at the value's root.
fn prefix(at: &str) -> String {
    if at.is_empty() {
        String::new()
    } else {
        format!("{at}: ")
    }
}

/// The JSON type the schema asks for, if `value` is not of it.
fn type_mismatch(value: &Value, schema: &JSONSchemaProps) -> Option<String> {
    if schema.x_kubernetes_int_or_string == Some(true) {
        let ok = value.is_string() || value.as_number().is_some_and(is_integer);
        return (!ok).then(|| format!("{value} is neither an integer nor a string"));
    }
    let ok = match schema.type_.as_deref() {
        None => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("boolean") => value.is_boolean(),
        Some("number") => value.is_number(),
        Some("integer") => value.as_number().is_some_and(is_integer),
        Some(other) => return Some(format!("the schema's type {other:?} is not a JSON type")),
    };
    (!ok).then(|| {
        format!(
            "{value} is not of type {}",
            schema.type_.as_deref().unwrap_or("")
        )
    })
}

fn is_integer(n: &Number) -> bool {
    exact_integer(n).is_some()
}

/// The number as an exact integer, when it is one (`3`, `3.0`).
fn exact_integer(n: &Number) -> Option<i128> {
    if let Some(i) = n.as_i64() {
        return Some(i128::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Some(i128::from(u));
    }
    let f = n.as_f64()?;
    // Checked: finite, integral and well inside i128, so the conversion is exact.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "integral and within ±1e30, so exact in i128"
    )]
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 1e30).then_some(f as i128)
}

/// JSON equality with numbers compared by value (`1` equals `1.0`), as the server compares enums.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The values an integer `format` admits (kube-openapi checks every value against it; no format
/// means int64).
pub fn integer_format_range(format: Option<&str>) -> (i128, i128) {
    match format {
        Some("int32") => (i128::from(i32::MIN), i128::from(i32::MAX)),
        _ => (i128::from(i64::MIN), i128::from(i64::MAX)),
    }
}

fn number_problems(n: &Number, schema: &JSONSchemaProps, out: &mut Vec<String>) {
    let Some(x) = n.as_f64() else { return };
    if schema.type_.as_deref() == Some("integer")
        && let Some(i) = exact_integer(n)
    {
        let (lo, hi) = integer_format_range(schema.format.as_deref());
        if i < lo || i > hi {
            out.push(format!(
                "{i} does not fit format {}",
                schema.format.as_deref().unwrap_or("int64 (the default)")
            ));
        }
    }
    if schema.type_.as_deref() == Some("number")
        && schema.format.as_deref() == Some("float")
        && x.abs() > f64::from(f32::MAX)
    {
        out.push(format!("{x} does not fit format float"));
    }
    if let Some(min) = schema.minimum {
        let exclusive = schema.exclusive_minimum == Some(true);
        if x < min || (exclusive && x == min) {
            out.push(format!(
                "{n} is below the minimum {min}{}",
                if exclusive { " (exclusive)" } else { "" }
            ));
        }
    }
    if let Some(max) = schema.maximum {
        let exclusive = schema.exclusive_maximum == Some(true);
        if x > max || (exclusive && x == max) {
            out.push(format!(
                "{n} is above the maximum {max}{}",
                if exclusive { " (exclusive)" } else { "" }
            ));
        }
    }
    if let Some(m) = schema.multiple_of
        && m != 0.0
        && (x / m).fract() != 0.0
    {
        out.push(format!("{n} is not a multiple of {m}"));
    }
}

fn string_problems(s: &str, schema: &JSONSchemaProps, out: &mut Vec<String>) {
    // The server counts characters (runes), not bytes.
    let chars = i64::try_from(s.chars().count()).unwrap_or(i64::MAX);
    if let Some(min) = schema.min_length
        && chars < min
    {
        out.push(format!("{s:?} is shorter than {min} characters"));
    }
    if let Some(max) = schema.max_length
        && chars > max
    {
        out.push(format!("{s:?} is longer than {max} characters"));
    }
    if let Some(pattern) = &schema.pattern {
        // Unanchored, like Go's regexp.MatchString; RE2 and the regex crate share this syntax.
        match regex::Regex::new(pattern) {
            Ok(re) if !re.is_match(s) => out.push(format!("{s:?} does not match {pattern:?}")),
            Ok(_) => {}
            Err(e) => out.push(format!("pattern {pattern:?} does not compile: {e}")),
        }
    }
    if let Some(format) = schema.format.as_deref().filter(|f| !f.is_empty()) {
        let ok = match format {
            "ipv4" => Some(s.parse::<Ipv4Addr>().is_ok()),
            "ipv6" => Some(s.parse::<Ipv6Addr>().is_ok()),
            "cidr" => Some(is_cidr(s)),
            "password" => Some(true),
            _ => None,
        };
        match ok {
            Some(true) => {}
            Some(false) => out.push(format!("{s:?} is not a valid {format}")),
            None => out.push(format!(
                "format {format:?} is not one this check can verify: extend default_value.rs"
            )),
        }
    }
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, len)) = s.split_once('/') else {
        return false;
    };
    let (Ok(ip), Ok(len)) = (ip.parse::<IpAddr>(), len.parse::<u8>()) else {
        return false;
    };
    len <= if ip.is_ipv4() { 32 } else { 128 }
}

fn size_problems(
    what: &str,
    len: usize,
    (min, max): (Option<i64>, Option<i64>),
    at: &str,
    out: &mut Vec<String>,
) {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let prefix = prefix(at);
    if let Some(min) = min
        && len < min
    {
        out.push(format!("{prefix}has {len} {what}, fewer than {min}"));
    }
    if let Some(max) = max
        && len > max
    {
        out.push(format!("{prefix}has {len} {what}, more than {max}"));
    }
}

fn array_problems(items: &[Value], schema: &JSONSchemaProps, at: &str, out: &mut Vec<String>) {
    size_problems(
        "items",
        items.len(),
        (schema.min_items, schema.max_items),
        at,
        out,
    );
    if schema.unique_items == Some(true) {
        for (i, a) in items.iter().enumerate() {
            if items[..i].iter().any(|b| same_value(a, b)) {
                out.push(format!("{at}[{i}]: repeats an earlier item (uniqueItems)"));
            }
        }
    }
    for (i, item) in items.iter().enumerate() {
        let at = format!("{at}[{i}]");
        match &schema.items {
            Some(JSONSchemaPropsOrArray::Schema(s)) => check(item, s, &at, out),
            Some(JSONSchemaPropsOrArray::Schemas(list)) => match list.get(i) {
                Some(s) => check(item, s, &at, out),
                None => out.push(format!("{at}: no item schema for this position")),
            },
            None => {}
        }
    }
}

fn object_problems(
    map: &serde_json::Map<String, Value>,
    schema: &JSONSchemaProps,
    at: &str,
    out: &mut Vec<String>,
) {
    size_problems(
        "properties",
        map.len(),
        (schema.min_properties, schema.max_properties),
        at,
        out,
    );
    for name in schema.required.iter().flatten() {
        if !map.contains_key(name) {
            out.push(format!("{at}.{name}: is required but missing"));
        }
    }
    let keeps_unknown = schema.x_kubernetes_preserve_unknown_fields == Some(true);
    for (name, value) in map {
        let at = format!("{at}.{name}");
        if let Some(s) = schema.properties.as_ref().and_then(|p| p.get(name)) {
            check(value, s, &at, out);
            continue;
        }
        match &schema.additional_properties {
            Some(JSONSchemaPropsOrBool::Schema(s)) => check(value, s, &at, out),
            Some(JSONSchemaPropsOrBool::Bool(true)) => {}
            _ if keeps_unknown => {}
            _ => out.push(format!(
                "{at}: is not in the schema, and the server refuses defaults that pruning would change"
            )),
        }
    }
}

fn combinator_problems(value: &Value, schema: &JSONSchemaProps, at: &str, out: &mut Vec<String>) {
    for s in schema.all_of.iter().flatten() {
        check(value, s, at, out);
    }
    let passing = |list: &Vec<JSONSchemaProps>| {
        list.iter()
            .filter(|s| {
                let mut scratch = Vec::new();
                check(value, s, at, &mut scratch);
                scratch.is_empty()
            })
            .count()
    };
    let prefix = prefix(at);
    if let Some(list) = &schema.any_of
        && passing(list) == 0
    {
        out.push(format!("{prefix}{value} matches none of anyOf"));
    }
    if let Some(list) = &schema.one_of
        && passing(list) != 1
    {
        out.push(format!(
            "{prefix}{value} does not match exactly one of oneOf"
        ));
    }
    if let Some(not) = &schema.not {
        let mut scratch = Vec::new();
        check(value, not, at, &mut scratch);
        if scratch.is_empty() {
            out.push(format!("{prefix}{value} matches the schema under not"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(v: Value) -> JSONSchemaProps {
        serde_json::from_value(v).expect("schema")
    }

    #[test]
    fn the_bgpconf_as_defect_is_caught() {
        // issue 22 item 4: `default: 0` under `minimum: 1`; the server refused the whole CRD.
        let s = schema(json!({"type": "integer", "format": "int64", "minimum": 1, "default": 0}));
        let p = problems(&json!(0), &s);
        assert_eq!(p, ["0 is below the minimum 1"]);
    }

    #[test]
    fn integers_must_fit_their_format() {
        let int32 = schema(json!({"type": "integer", "format": "int32"}));
        assert!(problems(&json!(2_147_483_647), &int32).is_empty());
        assert_eq!(problems(&json!(4_294_967_295u64), &int32).len(), 1);
        let plain = schema(json!({"type": "integer"}));
        assert_eq!(problems(&json!(u64::MAX), &plain).len(), 1);
        assert_eq!(problems(&json!(1.5), &plain).len(), 1);
        assert!(problems(&json!(3.0), &plain).is_empty());
    }

    #[test]
    fn types_nullable_and_int_or_string() {
        let s = schema(json!({"type": "string"}));
        assert_eq!(problems(&json!(1), &s).len(), 1);
        assert_eq!(problems(&Value::Null, &s).len(), 1);
        let n = schema(json!({"type": "string", "nullable": true}));
        assert!(problems(&Value::Null, &n).is_empty());
        let ios = schema(json!({"x-kubernetes-int-or-string": true}));
        assert!(problems(&json!("90"), &ios).is_empty());
        assert!(problems(&json!(90), &ios).is_empty());
        assert_eq!(problems(&json!(true), &ios).len(), 1);
    }

    #[test]
    fn strings_enum_length_pattern_and_format() {
        let s = schema(json!({"type": "string", "enum": ["", "bgp"], "maxLength": 2}));
        assert_eq!(problems(&json!("bgp"), &s).len(), 1, "too long");
        assert_eq!(problems(&json!("x"), &s).len(), 1, "not in enum");
        let p = schema(json!({"type": "string", "pattern": "^[0-9]+$", "minLength": 1}));
        assert!(problems(&json!("42"), &p).is_empty());
        assert_eq!(problems(&json!("4a"), &p).len(), 1);
        let ip = schema(json!({"type": "string", "format": "ipv4"}));
        assert!(problems(&json!("10.0.0.1"), &ip).is_empty());
        assert_eq!(problems(&json!("fd00::1"), &ip).len(), 1);
        let unknown = schema(json!({"type": "string", "format": "date-time"}));
        assert_eq!(
            problems(&json!("2026-01-01T00:00:00Z"), &unknown).len(),
            1,
            "unverifiable formats are reported, not passed"
        );
    }

    #[test]
    fn objects_need_required_fields_and_no_pruned_ones() {
        let s = schema(json!({
            "type": "object",
            "required": ["a"],
            "properties": {"a": {"type": "integer", "minimum": 0}, "b": {"type": "boolean"}}
        }));
        assert!(problems(&json!({"a": 1}), &s).is_empty());
        assert_eq!(
            problems(&json!({"b": true}), &s),
            [".a: is required but missing"]
        );
        let p = problems(&json!({"a": -1, "c": 1}), &s);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with(".a: -1 is below"), "{p:?}");
        assert!(p[1].starts_with(".c: is not in the schema"), "{p:?}");
        let open = schema(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
        assert!(problems(&json!({"c": 1}), &open).is_empty());
    }

    #[test]
    fn lists_maps_and_combinators() {
        let l = schema(json!({"type": "array", "maxItems": 1, "items": {"type": "string"}}));
        assert_eq!(problems(&json!(["a", 1]), &l).len(), 2);
        let m = schema(json!({
            "type": "object",
            "additionalProperties": {"type": "integer", "maximum": 10}
        }));
        assert_eq!(
            problems(&json!({"k": 11}), &m),
            [".k: 11 is above the maximum 10"]
        );
        let any = schema(json!({"anyOf": [{"type": "integer"}, {"type": "string"}]}));
        assert!(problems(&json!("x"), &any).is_empty());
        assert_eq!(problems(&json!(true), &any).len(), 1);
    }

    #[test]
    fn cel_rules_are_reported_not_ignored() {
        let s = schema(json!({
            "type": "string",
            "x-kubernetes-validations": [{"rule": "self != ''"}]
        }));
        assert_eq!(problems(&json!("x"), &s).len(), 1);
    }
}
