//! Kubernetes' integer formats in place of the Rust ones schemars writes.
//!
//! schemars names the Rust type in `format` (`uint32`, `uint64`, `uint16`, ...). Kubernetes knows
//! `int32` and `int64` only: kubectl prints `unrecognized format "uint32"` on every apply and the
//! API server drops the format. The server also checks `minimum`, `maximum` and every value
//! against the format (kube-openapi `validate/values.go`, `IsValueValidAgainstRange`):
//! `format: int32` with `maximum: 4294967295` fails every value ("Maximum boundary value must be
//! of type integer with format int32"), and so does `format: int32` on an AS number above
//! 2147483647 — OpenELB's own CRDs (controller-gen maps Go's `uint32` to `int32`) refuse the
//! private 4-octet ASNs 4200000000–4294967294 that way.
//!
//! So each Rust integer type gets the smallest Kubernetes format that holds all its values, and
//! its range is written as `minimum`/`maximum`, tightening (never widening) a `range` the field
//! already declares. `u64` gets no `maximum`: `u64::MAX` does not fit `int64`, and `i64::MAX` is
//! not exact as the float the server reads bounds as (it rounds up to 2^63, which overflows).
//!
//! This module rewrites whole schemas and knows nothing of particular fields.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};

/// The Kubernetes format and the value range of one schemars integer format.
fn kubernetes_format(schemars_format: &str) -> Option<(&'static str, Option<f64>, Option<f64>)> {
    Some(match schemars_format {
        "int8" => ("int32", Some(f64::from(i8::MIN)), Some(f64::from(i8::MAX))),
        "int16" => (
            "int32",
            Some(f64::from(i16::MIN)),
            Some(f64::from(i16::MAX)),
        ),
        "int32" => ("int32", None, None),
        "int64" | "int" => ("int64", None, None),
        "uint8" => ("int32", Some(0.0), Some(f64::from(u8::MAX))),
        "uint16" => ("int32", Some(0.0), Some(f64::from(u16::MAX))),
        "uint32" => ("int64", Some(0.0), Some(f64::from(u32::MAX))),
        "uint64" | "uint" => ("int64", Some(0.0), None),
        _ => return None,
    })
}

/// Rewrites every integer `format` in `schema` and below it to `int32`/`int64` with the Rust
/// type's range as bounds. Formats it does not know are left for [`super::acceptance`] to report.
pub fn to_kubernetes(schema: &mut JSONSchemaProps) {
    if schema.type_.as_deref() == Some("integer")
        && let Some((format, min, max)) = schema.format.as_deref().and_then(kubernetes_format)
    {
        schema.format = Some(format.to_owned());
        if let Some(min) = min {
            schema.minimum = Some(schema.minimum.map_or(min, |m| m.max(min)));
        }
        if let Some(max) = max {
            schema.maximum = Some(schema.maximum.map_or(max, |m| m.min(max)));
        }
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

    fn integer(format: &str, min: Option<f64>, max: Option<f64>) -> JSONSchemaProps {
        JSONSchemaProps {
            type_: Some("integer".into()),
            format: Some(format.into()),
            minimum: min,
            maximum: max,
            ..Default::default()
        }
    }

    #[test]
    fn unsigned_types_get_kubernetes_formats_and_their_range() {
        let cases = [
            ("uint32", ("int64", Some(0.0), Some(4_294_967_295.0))),
            ("uint16", ("int32", Some(0.0), Some(65535.0))),
            ("uint8", ("int32", Some(0.0), Some(255.0))),
            ("uint64", ("int64", Some(0.0), None)),
            ("int32", ("int32", None, None)),
            ("int64", ("int64", None, None)),
        ];
        for (from, (format, min, max)) in cases {
            let mut s = integer(from, None, None);
            to_kubernetes(&mut s);
            assert_eq!(s.format.as_deref(), Some(format), "{from}");
            assert_eq!((s.minimum, s.maximum), (min, max), "{from}");
        }
    }

    #[test]
    fn declared_ranges_are_kept_when_tighter() {
        let mut s = integer("uint32", Some(1.0), Some(65535.0));
        to_kubernetes(&mut s);
        assert_eq!((s.minimum, s.maximum), (Some(1.0), Some(65535.0)));
    }

    #[test]
    fn nested_schemas_are_rewritten() {
        let mut s = JSONSchemaProps {
            type_: Some("object".into()),
            additional_properties: Some(JSONSchemaPropsOrBool::Schema(Box::new(integer(
                "uint32", None, None,
            )))),
            ..Default::default()
        };
        to_kubernetes(&mut s);
        let Some(JSONSchemaPropsOrBool::Schema(value)) = &s.additional_properties else {
            panic!("map value schema");
        };
        assert_eq!(value.format.as_deref(), Some("int64"));
    }

    #[test]
    fn strings_keep_their_format() {
        let mut s = JSONSchemaProps {
            type_: Some("string".into()),
            format: Some("uint32".into()),
            ..Default::default()
        };
        to_kubernetes(&mut s);
        assert_eq!(s.format.as_deref(), Some("uint32"));
    }
}
