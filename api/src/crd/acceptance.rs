//! Would a kube-apiserver (1.37) take this CRD, without warnings? The checks the server makes
//! that schemars and kube-derive know nothing about, run by `crdgen` (which refuses to write a CRD
//! that fails them) and by the tests:
//!
//! - every `default` satisfies its own schema ([`super::default_value`]); the server validates
//!   each one when the CRD is created and refuses the whole CRD over one bad default;
//! - every `format` is one the server recognises for its type; any other draws
//!   `Warning: unrecognized format` on every apply and is dropped
//!   (apiextensions-apiserver `pkg/apiserver/validation/formats.go`);
//! - integer `minimum`, `maximum` and `multipleOf` are integers that fit the declared format;
//!   otherwise every value fails ("Maximum boundary value must be of type integer with format
//!   int32", kube-openapi `validate/values.go`);
//! - every CEL rule has a bounded cost: no list or map without `maxItems`/`maxProperties` above
//!   it (the cost multiplies by their size), and every string, list or map the rule reads has
//!   `maxLength` (or an `enum`), `maxItems` or `maxProperties`. Reads that cost the same whatever
//!   the size — `has(x)`, `size(x)`, `x.size()` — need no bound. A rule naming a field the schema
//!   does not declare would not compile, so that is reported too;
//! - no enum lists `null`: the server takes the CRD, but kubectl refuses it wherever it
//!   validates on the client (`unknown object type "nil"`), and the server refuses a `null`
//!   value all the same ([`super::optional_enum`]).
//!
//! It knows CRD schemas only, nothing of Berth's kinds.

use std::fmt;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};

use super::default_value;

/// Something a kube-apiserver would refuse or warn about, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `<crd name>/<version>: <field path>`, with `[]` for list items and `<key>` for map values.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// String formats a 1.37 server recognises, after its normalisation (dashes removed).
/// `k8s-short-name` and `k8s-long-name` are recognised from 1.34 on.
const STRING_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "k8sshortname",
    "k8slongname",
];

/// Every problem of every version's schema of `crd`; empty when the server would take it as is.
pub fn check(crd: &CustomResourceDefinition) -> Vec<Problem> {
    let mut problems = Vec::new();
    for version in &crd.spec.versions {
        let Some(root) = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
        else {
            continue;
        };
        let mut walk = Walk {
            crd: format!(
                "{}/{}",
                crd.metadata.name.as_deref().unwrap_or(""),
                version.name
            ),
            problems: &mut problems,
        };
        walk.node(root, "", true);
    }
    problems
}

struct Walk<'a> {
    crd: String,
    problems: &'a mut Vec<Problem>,
}

impl Walk<'_> {
    fn report(&mut self, path: &str, message: String) {
        let path = if path.is_empty() { "." } else { path };
        self.problems.push(Problem {
            at: format!("{}: {path}", self.crd),
            message,
        });
    }

    /// Checks `schema` at `path` and everything below it; `bounded` says whether every list and
    /// map above it has a maximum size.
    fn node(&mut self, schema: &JSONSchemaProps, path: &str, bounded: bool) {
        if let Some(message) = format_problem(schema) {
            self.report(path, message);
        }
        for message in bound_problems(schema) {
            self.report(path, message);
        }
        if schema.enum_.iter().flatten().any(|v| v.0.is_null()) {
            self.report(
                path,
                "enum lists null: kubectl refuses the CRD (unknown object type \"nil\")".to_owned(),
            );
        }
        if let Some(default) = &schema.default {
            for message in default_value::problems(&default.0, schema) {
                self.report(path, format!("default {}: {message}", default.0));
            }
        }
        for rule in schema.x_kubernetes_validations.iter().flatten() {
            if !bounded {
                self.report(
                    path,
                    format!(
                        "CEL rule {:?} sits under a list or map without maxItems/maxProperties: its cost has no bound",
                        rule.rule
                    ),
                );
            }
            for message in rule_problems(&rule.rule, schema) {
                self.report(path, format!("CEL rule {:?}: {message}", rule.rule));
            }
        }
        for (name, child) in schema.properties.iter().flatten() {
            self.node(child, &format!("{path}.{name}"), bounded);
        }
        if let Some(JSONSchemaPropsOrBool::Schema(value)) = &schema.additional_properties {
            let bounded = bounded && schema.max_properties.is_some();
            self.node(value, &format!("{path}.<key>"), bounded);
        }
        let bounded_items = bounded && schema.max_items.is_some();
        match &schema.items {
            Some(JSONSchemaPropsOrArray::Schema(item)) => {
                self.node(item, &format!("{path}[]"), bounded_items);
            }
            Some(JSONSchemaPropsOrArray::Schemas(items)) => {
                for item in items {
                    self.node(item, &format!("{path}[]"), bounded_items);
                }
            }
            None => {}
        }
        for group in [&schema.all_of, &schema.any_of, &schema.one_of] {
            for sub in group.iter().flatten() {
                self.node(sub, path, bounded);
            }
        }
        if let Some(not) = &schema.not {
            self.node(not, path, bounded);
        }
    }
}

/// The server's verdict on `format`, as `GetUnrecognizedFormats` gives it.
fn format_problem(schema: &JSONSchemaProps) -> Option<String> {
    let format = schema.format.as_deref().filter(|f| !f.is_empty())?;
    let ok = match schema.type_.as_deref() {
        None | Some("string") => STRING_FORMATS.contains(&format.replace('-', "").as_str()),
        Some("integer") => matches!(format, "int32" | "int64"),
        Some("number") => matches!(format, "float" | "double"),
        Some(_) => false,
    };
    (!ok).then(|| {
        format!(
            "format {format:?} is not one Kubernetes recognises for type {}: kubectl warns on every apply",
            schema.type_.as_deref().unwrap_or("(none)")
        )
    })
}

/// Integer bounds that are not integers of the declared format.
fn bound_problems(schema: &JSONSchemaProps) -> Vec<String> {
    if schema.type_.as_deref() != Some("integer") {
        return Vec::new();
    }
    let (lo, hi) = default_value::integer_format_range(schema.format.as_deref());
    let format = schema.format.as_deref().unwrap_or("int64 (the default)");
    let mut out = Vec::new();
    for (what, bound) in [
        ("minimum", schema.minimum),
        ("maximum", schema.maximum),
        ("multipleOf", schema.multiple_of),
    ] {
        let Some(b) = bound else { continue };
        // Compared as floats: the server reads bounds as float64 and prints them back as
        // integers, so 2^63 - 1 arrives as 2^63 and no longer fits int64.
        #[allow(
            clippy::cast_precision_loss,
            reason = "the range ends are compared as the float64 the server holds"
        )]
        let fits = b.fract() == 0.0 && b >= lo as f64 && b < (hi as f64 + 1.0);
        if !fits {
            out.push(format!(
                "{what} {b} is not an integer of format {format}: the server fails every value"
            ));
        }
    }
    out
}

/// One `self…` or `oldSelf…` path a rule reads: the field names after the root, whether the
/// read costs the same whatever the size (`has(…)`, `size(…)`, `….size()`).
#[derive(Debug, PartialEq, Eq)]
struct Read {
    fields: Vec<String>,
    size_free: bool,
}

/// The `self`/`oldSelf` paths of a CEL expression; string literals are skipped.
fn reads(rule: &str) -> Vec<Read> {
    let chars: Vec<char> = rule.chars().collect();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let text = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == '_') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && ident(chars[i]) {
            i += 1;
        }
        let word = text(start, i);
        let selected = chars[..start]
            .iter()
            .rev()
            .find(|c| !c.is_whitespace())
            .is_some_and(|&c| c == '.');
        if (word != "self" && word != "oldSelf") || selected {
            continue;
        }
        let mut fields = Vec::new();
        while i + 1 < chars.len()
            && chars[i] == '.'
            && (chars[i + 1].is_ascii_alphabetic() || chars[i + 1] == '_')
        {
            let f = i + 1;
            i = f;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            fields.push(text(f, i));
        }
        let after = text(i, chars.len());
        let after = after.trim_start();
        let mut size_free = false;
        if after.starts_with('(') {
            // The last name is a method called on the path, not a field.
            let method = fields.pop();
            size_free = method.as_deref() == Some("size") && after.starts_with("()");
        }
        let before = text(0, start);
        let before = before.trim_end();
        let wrapped = ["has(", "size("].iter().any(|w| {
            before.ends_with(w)
                && !before[..before.len() - w.len()].ends_with(|c: char| ident(c) || c == '.')
        }) && after.starts_with(')');
        out.push(Read {
            fields,
            size_free: size_free || wrapped,
        });
    }
    out
}

/// A property name as the server spells it in CEL: reserved words as `__as__`, and so on.
fn unescape(name: &str) -> String {
    let inner = name
        .strip_prefix("__")
        .and_then(|n| n.strip_suffix("__"))
        .filter(|n| !n.is_empty());
    match inner {
        Some("dash") => "-".into(),
        Some("dot") => ".".into(),
        Some("slash") => "/".into(),
        Some("underscores") => "__".into(),
        Some(word) if !word.contains("__") => word.into(),
        _ => name
            .replace("__underscores__", "__")
            .replace("__dot__", ".")
            .replace("__dash__", "-")
            .replace("__slash__", "/"),
    }
}

/// What is unbounded or undeclared among the reads of `rule`, evaluated at `schema`.
fn rule_problems(rule: &str, schema: &JSONSchemaProps) -> Vec<String> {
    let mut out = Vec::new();
    for read in reads(rule) {
        let mut here = schema;
        let mut path = String::from("self");
        let mut found = true;
        for field in &read.fields {
            let name = unescape(field);
            let next = here.properties.as_ref().and_then(|p| p.get(&name)).or(
                match &here.additional_properties {
                    Some(JSONSchemaPropsOrBool::Schema(v)) => Some(&**v),
                    _ => None,
                },
            );
            path = format!("{path}.{field}");
            match next {
                Some(next) => here = next,
                None => {
                    out.push(format!("reads {path}, which the schema does not declare"));
                    found = false;
                    break;
                }
            }
        }
        if found && !read.size_free {
            unbounded(here, &path, &mut out);
        }
    }
    out.dedup();
    out
}

/// Reports every string, list or map in `schema` (which a rule reads whole) without a maximum.
fn unbounded(schema: &JSONSchemaProps, path: &str, out: &mut Vec<String>) {
    let untyped = schema.type_.is_none();
    if schema.x_kubernetes_int_or_string == Some(true) || (untyped && schema.enum_.is_none()) {
        if schema.max_length.is_none() {
            out.push(format!(
                "reads {path}, which may be a string of any length: give it maxLength"
            ));
        }
        return;
    }
    match schema.type_.as_deref() {
        Some("string") if schema.max_length.is_none() && schema.enum_.is_none() => out.push(
            format!("reads {path}, a string without maxLength (or enum): its cost has no bound"),
        ),
        Some("array") => {
            if schema.max_items.is_none() {
                out.push(format!(
                    "reads {path}, a list without maxItems: its cost has no bound"
                ));
            }
            if let Some(JSONSchemaPropsOrArray::Schema(item)) = &schema.items {
                unbounded(item, &format!("{path}[]"), out);
            }
        }
        Some("object") => {
            if let Some(JSONSchemaPropsOrBool::Schema(value)) = &schema.additional_properties {
                if schema.max_properties.is_none() {
                    out.push(format!(
                        "reads {path}, a map without maxProperties: its cost has no bound"
                    ));
                }
                unbounded(value, &format!("{path}.<key>"), out);
            }
            for (name, child) in schema.properties.iter().flatten() {
                unbounded(child, &format!("{path}.{name}"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd_with(spec: serde_json::Value) -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "things.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"kind": "Thing", "plural": "things"},
                "scope": "Cluster",
                "versions": [{
                    "name": "v1",
                    "served": true,
                    "storage": true,
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "properties": {"spec": spec}
                    }}
                }]
            }
        }))
        .expect("crd")
    }

    fn messages(spec: serde_json::Value) -> Vec<String> {
        check(&crd_with(spec))
            .into_iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn every_generated_crd_is_accepted() {
        for (file, crd) in crate::crd::all() {
            let problems = check(&crd);
            assert!(problems.is_empty(), "{file}: {problems:#?}");
        }
    }

    #[test]
    fn null_among_enum_values_is_refused() {
        let m = messages(json!({"type": "object", "properties": {
            "p": {"type": "string", "nullable": true, "enum": ["a", null]}
        }}));
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].starts_with("things.example.com/v1: .spec.p: enum lists null"),
            "{m:?}"
        );
    }

    #[test]
    fn a_default_outside_its_own_minimum_is_refused() {
        // The defect of issue 22 item 4, as schemars wrote it for BgpConf's `spec.as`.
        let m = messages(json!({"type": "object", "properties": {
            "as": {"type": "integer", "format": "int64", "minimum": 1.0, "default": 0}
        }}));
        assert_eq!(
            m,
            ["things.example.com/v1: .spec.as: default 0: 0 is below the minimum 1"]
        );
    }

    #[test]
    fn schemars_unsigned_formats_are_refused() {
        let m = messages(json!({"type": "object", "properties": {
            "a": {"type": "integer", "format": "uint32"},
            "b": {"type": "integer", "format": "uint64"},
            "c": {"type": "string", "format": "date-time"},
            "d": {"type": "string", "format": "ip"},
            "e": {"type": "boolean", "format": "int32"}
        }}));
        let flagged: Vec<_> = m
            .iter()
            .map(|m| &m[..m.find(": format").expect(m)])
            .collect();
        assert_eq!(
            flagged,
            [
                "things.example.com/v1: .spec.a",
                "things.example.com/v1: .spec.b",
                "things.example.com/v1: .spec.d",
                "things.example.com/v1: .spec.e"
            ]
        );
    }

    #[test]
    fn bounds_must_fit_the_integer_format() {
        let m = messages(json!({"type": "object", "properties": {
            "as32": {"type": "integer", "format": "int32", "maximum": 4_294_967_295u64},
            "as64": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4_294_967_295u64},
            "big": {"type": "integer", "format": "int64", "maximum": 9_223_372_036_854_775_807i64},
            "half": {"type": "integer", "minimum": 0.5}
        }}));
        assert_eq!(m.len(), 3, "{m:#?}");
        assert!(m[0].contains(".spec.as32: maximum 4294967295"), "{m:#?}");
        assert!(m[1].contains(".spec.big: maximum"), "{m:#?}");
        assert!(m[2].contains(".spec.half: minimum 0.5"), "{m:#?}");
    }

    #[test]
    fn cel_rules_must_read_bounded_values() {
        let spec = |iface: serde_json::Value, rule: &str| {
            json!({"type": "object",
            "x-kubernetes-validations": [{"rule": rule}],
            "properties": {
                "interface": iface,
                "protocol": {"type": "string", "enum": ["bgp", "vip"]},
                "as": {"type": "integer"},
                "racks": {"type": "object", "additionalProperties": {"type": "integer"}},
                "names": {"type": "array", "items": {"type": "string", "maxLength": 5}}
            }})
        };
        let unbounded = json!({"type": "string"});
        let bounded = json!({"type": "string", "maxLength": 64});
        let rule = "!has(self.interface) || self.interface == '' || self.protocol in ['vip']";
        assert_eq!(messages(spec(unbounded.clone(), rule)).len(), 1);
        assert!(messages(spec(bounded.clone(), rule)).is_empty());
        let sizes = "has(self.__as__) || size(self.racks) > 0 || self.names.size() > 0";
        assert!(messages(spec(unbounded.clone(), sizes)).is_empty());
        let iterates = "self.names.all(n, n != 'x')";
        let m = messages(spec(bounded.clone(), iterates));
        assert!(m[0].contains("a list without maxItems"), "{m:#?}");
        let typo = messages(spec(bounded, "has(self.interfaces)"));
        assert!(typo[0].contains("does not declare"), "{typo:#?}");
    }

    #[test]
    fn cel_rules_under_unbounded_lists_are_refused() {
        let item = json!({"type": "string", "maxLength": 5,
            "x-kubernetes-validations": [{"rule": "self != ''"}]});
        let m = messages(json!({"type": "object", "properties": {
            "open": {"type": "array", "items": item},
            "capped": {"type": "array", "maxItems": 8, "items": item}
        }}));
        assert_eq!(m.len(), 1, "{m:#?}");
        assert!(m[0].contains(".spec.open[]: CEL rule"), "{m:#?}");
    }

    #[test]
    fn reads_skip_literals_and_methods() {
        let r = reads("self.a.b == 'self.c' && has(self.d) && self.e.size() > 1 && x.self");
        assert_eq!(
            r,
            [
                Read {
                    fields: vec!["a".into(), "b".into()],
                    size_free: false
                },
                Read {
                    fields: vec!["d".into()],
                    size_free: true
                },
                Read {
                    fields: vec!["e".into()],
                    size_free: true
                },
            ]
        );
        assert_eq!(unescape("__as__"), "as");
        assert_eq!(unescape("a__dash__b"), "a-b");
    }
}
