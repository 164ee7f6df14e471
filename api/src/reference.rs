//! The configuration reference (`docs/reference.md`), rendered from the generated CRD schemas and
//! from [`crate::keys`], so the documentation can never drift from what the API server enforces.
//!
//! Every field of `spec` and `status` becomes one table row: its path, type, constraints
//! (enum, pattern, default, bounds, CEL rules' messages) and the schema's own description, which
//! comes from the `///` comments on the Rust types.

use std::fmt::Write as _;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};

use crate::keys;

/// One row of the reference table: a field of a CRD's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRow {
    /// Dotted path from the object root, e.g. `spec.conf.peerAs`; `[]` marks list items and
    /// `<key>` map values.
    pub path: String,
    /// JSON type, with its format when the schema has one (`integer (uint32)`).
    pub kind: String,
    /// Whether the parent object lists this field as required.
    pub required: bool,
    /// Whether it is a key of the list its object is an item of (`x-kubernetes-list-map-keys`):
    /// an item without it is refused before validation, with another message.
    pub list_key: bool,
    /// Enum values, pattern, default, bounds and CEL rule messages, already formatted.
    pub constraints: Vec<String>,
    /// The schema's description, on one line.
    pub description: String,
}

/// An annotation, label or name Berth reads or writes, with what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDoc {
    /// The key itself, as written in manifests.
    pub key: &'static str,
    /// Where it goes: `Service annotation`, `Eip annotation`, `Node label`, ...
    pub applies_to: &'static str,
    /// What setting it does.
    pub meaning: &'static str,
}

/// Every key from [`crate::keys`] a user may meet in a manifest, with its meaning.
pub fn key_docs() -> Vec<KeyDoc> {
    vec![
        KeyDoc {
            key: keys::OPENELB_OPT_IN,
            applies_to: "Service annotation",
            meaning: "OpenELB opt-in: value `openelb` asks Berth for an address (like OpenELB).",
        },
        KeyDoc {
            key: keys::OPENELB_POOL,
            applies_to: "Service annotation",
            meaning: "Name of the `Eip` (pool) the Service takes its address from.",
        },
        KeyDoc {
            key: keys::OPENELB_REQUESTED_IP,
            applies_to: "Service annotation",
            meaning: "A specific address to allocate (takes precedence over `spec.loadBalancerIP`).",
        },
        KeyDoc {
            key: keys::OPENELB_DEFAULT_POOL,
            applies_to: "Eip annotation",
            meaning: "`\"true\"` marks the default pool: used when a Service names no pool and no namespace-bound pool matches.",
        },
        KeyDoc {
            key: keys::OPENELB_RACK_LABEL,
            applies_to: "Node label",
            meaning: "The node's rack; looked up in `BgpConf.spec.asPerRack` to pick the node's AS.",
        },
        KeyDoc {
            key: keys::METALLB_LOAD_BALANCER_IPS,
            applies_to: "Service annotation",
            meaning: "MetalLB compatibility: comma-separated requested addresses, at most one per family.",
        },
        KeyDoc {
            key: keys::METALLB_ADDRESS_POOL,
            applies_to: "Service annotation",
            meaning: "MetalLB compatibility: name of the pool (`Eip`).",
        },
        KeyDoc {
            key: keys::METALLB_ALLOW_SHARED_IP,
            applies_to: "Service annotation",
            meaning: "MetalLB compatibility: Services with the same sharing key may share one address.",
        },
        KeyDoc {
            key: keys::BGP_COMMUNITIES,
            applies_to: "Service annotation",
            meaning: "Standard communities added to the pool's for this Service's addresses, comma-separated (`65000:100, no-export`). Services sharing an address: all of theirs are added. Any malformed `berth.io/bgp-*` value refuses them all: the Service keeps the pool's attributes and gets an `InvalidBgpAttributes` Warning.",
        },
        KeyDoc {
            key: keys::BGP_LARGE_COMMUNITIES,
            applies_to: "Service annotation",
            meaning: "Large communities added to the pool's, comma-separated (`65000:1:2`).",
        },
        KeyDoc {
            key: keys::BGP_LOCAL_PREF,
            applies_to: "Service annotation",
            meaning: "LOCAL_PREF (0-4294967295, iBGP only) replacing the pool's. Services sharing an address with different values: the pool's is used, and the speakers say so.",
        },
        KeyDoc {
            key: keys::BGP_MED,
            applies_to: "Service annotation",
            meaning: "MED (0-4294967295) replacing the pool's; sharing as for LOCAL_PREF.",
        },
        KeyDoc {
            key: keys::BGP_AS_PATH_PREPEND,
            applies_to: "Service annotation",
            meaning: "AS_PATH prepend count (0-10) replacing the pool's `asPathPrepend` (`0`: none for this Service); eBGP only; sharing as for LOCAL_PREF. Not applied to an aggregated route.",
        },
        KeyDoc {
            key: keys::BGP_AS_PATH_PREPEND_ASN,
            applies_to: "Service annotation",
            meaning: "The AS to prepend with `berth.io/bgp-as-path-prepend` (required beside it); unset: the local AS.",
        },
        KeyDoc {
            key: keys::LOAD_BALANCER_CLASS,
            applies_to: "Service `spec.loadBalancerClass`",
            meaning: "Berth's class; Services with another class are never touched.",
        },
        KeyDoc {
            key: keys::EXCLUDE_FROM_LB_LABEL,
            applies_to: "Node label",
            meaning: "Nodes carrying it never announce load-balancer addresses.",
        },
        KeyDoc {
            key: keys::SERVICE_FINALIZER,
            applies_to: "Service finalizer (written by Berth)",
            meaning: "Held while the Service has an address; removed once the address is released.",
        },
        KeyDoc {
            key: keys::EIP_FINALIZER,
            applies_to: "Eip finalizer (written by Berth)",
            meaning: "Held while any Service holds one of the pool's addresses.",
        },
        KeyDoc {
            key: keys::BGP_CONF_NAME,
            applies_to: "BgpConf name",
            meaning: "Only the `BgpConf` named `default` counts; others are ignored.",
        },
        KeyDoc {
            key: keys::CONTROLLER_FIELD_MANAGER,
            applies_to: "Field manager (written by Berth)",
            meaning: "Field manager of every server-side apply the controller makes.",
        },
    ]
}

/// The field rows of one CRD (its first version), `spec` then `status`, depth first.
pub fn field_rows(crd: &CustomResourceDefinition) -> Vec<FieldRow> {
    let mut rows = Vec::new();
    let root = crd
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref());
    if let Some(props) = root.and_then(|r| r.properties.as_ref()) {
        for top in ["spec", "status"] {
            if let Some(schema) = props.get(top) {
                walk(top, schema, false, &mut rows);
            }
        }
    }
    rows
}

/// Appends the row for `schema` at `path`, then the rows of everything below it.
fn walk(path: &str, schema: &JSONSchemaProps, required: bool, rows: &mut Vec<FieldRow>) {
    walk_keyed(path, schema, required, false, rows);
}

/// [`walk`], knowing whether the field is a key of the list its object is an item of.
fn walk_keyed(
    path: &str,
    schema: &JSONSchemaProps,
    required: bool,
    list_key: bool,
    rows: &mut Vec<FieldRow>,
) {
    rows.push(FieldRow {
        path: path.to_owned(),
        kind: type_name(schema),
        required,
        list_key,
        constraints: constraints(schema),
        description: one_line(schema.description.as_deref().unwrap_or("")),
    });
    walk_below(path, schema, &[], rows);
}

/// The rows below `schema`; `keys` are the list-map keys among its properties.
fn walk_below(path: &str, schema: &JSONSchemaProps, keys: &[String], rows: &mut Vec<FieldRow>) {
    if let Some(props) = &schema.properties {
        let needed = schema.required.as_deref().unwrap_or(&[]);
        for (name, child) in props {
            let is_required = needed.iter().any(|r| r == name);
            let is_key = keys.iter().any(|k| k == name);
            walk_keyed(&format!("{path}.{name}"), child, is_required, is_key, rows);
        }
    }
    if let Some(JSONSchemaPropsOrBool::Schema(value)) = &schema.additional_properties {
        walk(&format!("{path}.<key>"), value, false, rows);
    }
    let keys = schema.x_kubernetes_list_map_keys.as_deref().unwrap_or(&[]);
    let items: Vec<&JSONSchemaProps> = match &schema.items {
        Some(JSONSchemaPropsOrArray::Schema(item)) => vec![item.as_ref()],
        Some(JSONSchemaPropsOrArray::Schemas(items)) => items.iter().collect(),
        None => Vec::new(),
    };
    for item in items {
        let item_path = format!("{path}[]");
        rows.push(FieldRow {
            path: item_path.clone(),
            kind: type_name(item),
            required: false,
            list_key: false,
            constraints: constraints(item),
            description: one_line(item.description.as_deref().unwrap_or("")),
        });
        walk_below(&item_path, item, keys, rows);
    }
}

fn type_name(schema: &JSONSchemaProps) -> String {
    if schema.x_kubernetes_int_or_string == Some(true) {
        return "integer or string".to_owned();
    }
    let base = match (&schema.type_, &schema.additional_properties) {
        (Some(t), Some(JSONSchemaPropsOrBool::Schema(_))) if t == "object" => "map".to_owned(),
        (Some(t), _) => t.clone(),
        (None, _) => "any".to_owned(),
    };
    match &schema.format {
        Some(format) => format!("{base} ({format})"),
        None => base,
    }
}

fn constraints(schema: &JSONSchemaProps) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(values) = &schema.enum_ {
        let list: Vec<String> = values.iter().map(|v| format!("`{}`", v.0)).collect();
        out.push(format!("one of {}", list.join(", ")));
    }
    if let Some(pattern) = &schema.pattern {
        out.push(format!("pattern `{pattern}`"));
    }
    if let Some(default) = &schema.default {
        out.push(format!("default `{}`", default.0));
    }
    bounds(&mut out, "value", schema.minimum, schema.maximum);
    let as_f64 = |n: Option<i64>| n.map(|n| n as f64);
    bounds(
        &mut out,
        "length",
        as_f64(schema.min_length),
        as_f64(schema.max_length),
    );
    bounds(
        &mut out,
        "items",
        as_f64(schema.min_items),
        as_f64(schema.max_items),
    );
    for rule in schema.x_kubernetes_validations.as_deref().unwrap_or(&[]) {
        let message = rule.message.as_deref().unwrap_or(&rule.rule);
        out.push(format!("rule: {message}"));
    }
    out
}

fn bounds(out: &mut Vec<String>, what: &str, min: Option<f64>, max: Option<f64>) {
    // A `minimum: 0` on an unsigned integer is schemars' way of saying "unsigned": noise here.
    let min = min.filter(|m| !(what == "value" && *m == 0.0));
    match (min, max) {
        (Some(lo), Some(hi)) => out.push(format!("{what} {lo}–{hi}")),
        (Some(lo), None) => out.push(format!("{what} ≥ {lo}")),
        (None, Some(hi)) => out.push(format!("{what} ≤ {hi}")),
        (None, None) => {}
    }
}

/// Folds a multi-line description into one Markdown table cell.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Escapes a table cell: `|` would end the cell, even inside backticks.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Renders the reference of one CRD: a heading, the object's description and its field table.
pub fn render_crd(crd: &CustomResourceDefinition) -> String {
    let mut out = String::new();
    let names = &crd.spec.names;
    let version = crd.spec.versions.first();
    let _ = writeln!(out, "## {}\n", names.kind);
    let _ = writeln!(
        out,
        "`{}/{}`, {}-scoped, plural `{}`{}.\n",
        crd.spec.group,
        version.map(|v| v.name.as_str()).unwrap_or(""),
        crd.spec.scope.to_lowercase(),
        names.plural,
        names
            .short_names
            .as_ref()
            .map(|s| format!(", short name `{}`", s.join("`, `")))
            .unwrap_or_default(),
    );
    let root = version
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref());
    if let Some(description) = root.and_then(|r| r.description.as_deref()) {
        let _ = writeln!(out, "{}\n", one_line(description));
    }
    out.push_str("| field | type | constraints | description |\n|---|---|---|---|\n");
    for row in field_rows(crd) {
        let mut constraints = row.constraints.clone();
        if row.list_key {
            constraints.insert(0, "**required** (list key)".to_owned());
        } else if row.required {
            constraints.insert(0, "**required**".to_owned());
        }
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            cell(&row.path),
            cell(&row.kind),
            cell(&constraints.join("; ")),
            cell(&row.description),
        );
    }
    out
}

/// Renders the whole `docs/reference.md`: every CRD Berth installs, then the keys table.
pub fn render() -> String {
    let mut out = String::from(
        "<!-- Generated by `cargo run -p api --bin crdgen -- deploy/crds`; do not edit. -->\n\
         # Configuration reference\n\n\
         Generated from the CRD schemas Berth installs (`deploy/crds/`) and from the keys in \
         `api/src/keys.rs`; `./test.sh` fails when this file is stale. Paths use `[]` for list \
         items and `<key>` for map values. `rule:` lines are CEL validation rules the API server \
         enforces, shown by their message.\n\n",
    );
    for (_, crd) in crate::crd::all() {
        out.push_str(&render_crd(&crd));
        out.push('\n');
    }
    out.push_str("## Annotations, labels and names\n\n");
    out.push_str("| key | applies to | what it does |\n|---|---|---|\n");
    for doc in key_docs() {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            cell(doc.key),
            cell(doc.applies_to),
            cell(doc.meaning)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every property path under `spec`, collected independently of the renderer.
    fn spec_paths(schema: &JSONSchemaProps, path: &str, out: &mut Vec<String>) {
        out.push(path.to_owned());
        for (name, child) in schema.properties.iter().flatten() {
            spec_paths(child, &format!("{path}.{name}"), out);
        }
    }

    #[test]
    fn reference_names_every_spec_field_of_every_kind() {
        let text = render();
        for (_, crd) in crate::crd::all() {
            assert!(text.contains(&format!("## {}\n", crd.spec.names.kind)));
            let root = crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("schema");
            let spec = root
                .properties
                .as_ref()
                .and_then(|p| p.get("spec"))
                .expect("spec");
            let mut paths = Vec::new();
            spec_paths(spec, "spec", &mut paths);
            assert!(
                paths.len() > 3,
                "{} has a spec with fields",
                crd.spec.names.kind
            );
            for path in paths {
                assert!(
                    text.contains(&format!("| `{path}` |")),
                    "{}: {path} missing from the reference",
                    crd.spec.names.kind
                );
            }
        }
    }

    #[test]
    fn reference_lists_cel_messages_and_descriptions() {
        let text = render();
        assert!(text.contains("rule: spec.address is immutable: create a new Eip instead"));
        assert!(text.contains("rule: set conf.authPassword or authPasswordSecretRef, not both"));
        assert!(text.contains("An address pool Services of type LoadBalancer take"));
    }

    #[test]
    fn reference_lists_every_user_facing_key() {
        let text = render();
        for doc in key_docs() {
            assert!(text.contains(&format!("| `{}` |", doc.key)), "{}", doc.key);
        }
        assert!(text.contains(keys::OPENELB_POOL));
        assert!(text.contains(keys::LOAD_BALANCER_CLASS));
    }

    #[test]
    fn pipes_in_patterns_cannot_break_the_table() {
        let text = render();
        for line in text.lines().filter(|l| l.starts_with("| `spec")) {
            let unescaped = line.replace("\\|", "");
            assert_eq!(unescaped.matches('|').count(), 5, "{line}");
        }
    }
}
