//! An optional enum neither lists `null` among its values nor says `nullable`.
//!
//! kube-derive writes an `Option` of an enum as `nullable: true` with `null` appended to the
//! enum's values. Found on a real kube-apiserver 1.37 by `testbed/tests/kube_install.rs`, that
//! is wrong twice:
//!
//! - kubectl refuses the CRD whenever it validates it on the client, as it does for a `List`
//!   (which `kubectl get crd -o yaml` writes for several CRDs, so such a backup never
//!   applies again): `unknown object type "nil" in
//!   CustomResourceDefinition.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.protocol.enum[4]`;
//! - the server refuses an explicit `null` all the same (`spec.protocol: Unsupported value:
//!   null: supported values: "", "bgp", "layer2", "vip", "null"`), where OpenELB's own CRD, not
//!   nullable, takes it: the server prunes a `null` of a field that is not nullable before
//!   validating (apiextensions-apiserver `PruneNonNullableNullsWithoutDefaults`). An OpenELB
//!   manifest with an empty `protocol:` was refused.
//!
//! Neither `null` among the values nor `nullable`, then: a `null` means "unset", as `None`
//! does, and as with OpenELB.
//!
//! This module rewrites whole schemas and knows nothing of particular fields.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};

/// Rewrites every nullable enum that lists `null` besides other values, in `schema` and below
/// it, to list the other values only and not be nullable.
pub fn to_kubernetes(schema: &mut JSONSchemaProps) {
    if schema.nullable == Some(true)
        && let Some(values) = &mut schema.enum_
        && values.iter().any(|v| v.0.is_null())
        && values.iter().any(|v| !v.0.is_null())
    {
        values.retain(|v| !v.0.is_null());
        schema.nullable = None;
    }
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        to_kubernetes(child);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(value)) = &mut schema.additional_properties {
        to_kubernetes(value);
    }
    match &mut schema.items {
        Some(JSONSchemaPropsOrArray::Schema(item)) => to_kubernetes(item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => items.iter_mut().for_each(to_kubernetes),
        None => {}
    }
    for group in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of] {
        group.iter_mut().flatten().for_each(to_kubernetes);
    }
    if let Some(not) = &mut schema.not {
        to_kubernetes(not);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(value: serde_json::Value) -> JSONSchemaProps {
        serde_json::from_value(value).expect("schema")
    }

    #[test]
    fn nested_optional_enums_lose_null_and_nullable() {
        let mut s = schema(json!({"type": "object", "properties": {"spec": {
            "type": "object",
            "properties": {"protocol": {
                "type": "string", "nullable": true, "enum": ["", "bgp", null]
            }}
        }}}));
        to_kubernetes(&mut s);
        let protocol = &s.properties.as_ref().expect("properties")["spec"]
            .properties
            .as_ref()
            .expect("properties")["protocol"];
        let values: Vec<_> = protocol.enum_.iter().flatten().map(|v| &v.0).collect();
        assert_eq!(values, [&json!(""), &json!("bgp")]);
        assert_eq!(protocol.nullable, None);
    }

    #[test]
    fn other_schemas_are_left_alone() {
        for value in [
            json!({"type": "string", "enum": ["a", null]}),
            json!({"type": "string", "nullable": true, "enum": ["a"]}),
            json!({"type": "string", "nullable": true}),
        ] {
            let mut s = schema(value);
            let before = s.clone();
            to_kubernetes(&mut s);
            assert_eq!(s, before);
        }
    }
}
