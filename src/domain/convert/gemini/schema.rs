//! JSON Schema ⇄ Gemini `Schema` (the OpenAPI 3.0 subset `functionDeclarations[].parameters`
//! accepts; unknown keywords such as `$schema` or `additionalProperties` fail the whole request).

use serde_json::{Map, Value, json};

/// Keywords Gemini's `Schema` accepts; everything else is dropped.
const KEEP: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// How deep `$ref`s are inlined and schemas are walked before giving up on a branch.
const MAX_DEPTH: usize = 32;

/// A JSON Schema (Claude `input_schema`) as a Gemini `parameters` schema: keeps the keywords
/// Gemini knows, inlines local `$ref`s (`#/$defs/…`, `#/definitions/…`), turns `oneOf` into
/// `anyOf`, a type list with `"null"` into `nullable`, `const` into a one-value `enum`,
/// numeric exclusive bounds into inclusive ones, and drops non-string enums.
pub fn sanitize_schema(schema: &Value) -> Value {
    sanitize(schema, schema, 0)
}

fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let path = reference.strip_prefix("#/")?;
    let mut cur = root;
    for seg in path.split('/') {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        cur = cur.get(seg.as_str())?;
    }
    Some(cur)
}

fn sanitize(schema: &Value, root: &Value, depth: usize) -> Value {
    let Some(obj) = schema.as_object() else {
        return json!({});
    };
    if depth > MAX_DEPTH {
        return json!({});
    }
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        let mut base = match resolve(root, r) {
            Some(target) => sanitize(target, root, depth + 1),
            None => json!({}),
        };
        if let (Some(b), Some(d)) = (base.as_object_mut(), obj.get("description")) {
            b.insert("description".into(), d.clone());
        }
        return base;
    }
    let mut out = Map::new();
    // allOf with one member: merge it in (the common pydantic shape); more members: dropped.
    if let Some([only]) = obj
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        && let Some(m) = sanitize(only, root, depth + 1).as_object()
    {
        out.extend(m.clone());
    }
    for (k, v) in obj {
        match k.as_str() {
            "type" => match v {
                Value::Array(types) => {
                    let non_null: Vec<&Value> = types
                        .iter()
                        .filter(|t| t.as_str() != Some("null"))
                        .collect();
                    if non_null.len() < types.len() {
                        out.insert("nullable".into(), json!(true));
                    }
                    match non_null.as_slice() {
                        [one] => {
                            out.insert("type".into(), (*one).clone());
                        }
                        [] => {}
                        many => {
                            let any: Vec<Value> = many.iter().map(|t| json!({"type": t})).collect();
                            out.insert("anyOf".into(), Value::Array(any));
                        }
                    }
                }
                _ => {
                    out.insert("type".into(), v.clone());
                }
            },
            "properties" => {
                if let Some(props) = v.as_object() {
                    let p: Map<String, Value> = props
                        .iter()
                        .map(|(name, s)| (name.clone(), sanitize(s, root, depth + 1)))
                        .collect();
                    out.insert("properties".into(), Value::Object(p));
                }
            }
            "items" => {
                out.insert("items".into(), sanitize(v, root, depth + 1));
            }
            "anyOf" | "oneOf" => {
                if let Some(list) = v.as_array() {
                    let l: Vec<Value> = list.iter().map(|s| sanitize(s, root, depth + 1)).collect();
                    out.insert("anyOf".into(), Value::Array(l));
                }
            }
            "enum" if v.as_array().is_some_and(|l| l.iter().all(Value::is_string)) => {
                out.insert("enum".into(), v.clone());
            }
            "const" if v.is_string() => {
                out.insert("enum".into(), json!([v]));
            }
            // Non-string enums and consts: Gemini only takes string enums.
            "enum" | "const" => {}
            "exclusiveMinimum" if v.is_number() => {
                out.entry("minimum").or_insert_with(|| v.clone());
            }
            "exclusiveMaximum" if v.is_number() => {
                out.entry("maximum").or_insert_with(|| v.clone());
            }
            "examples" => {
                if let Some(first) = v.as_array().and_then(|l| l.first()) {
                    out.entry("example").or_insert_with(|| first.clone());
                }
            }
            "required" => {
                if let Some(list) = v.as_array() {
                    let names: Vec<Value> =
                        list.iter().filter(|n| n.is_string()).cloned().collect();
                    out.insert("required".into(), Value::Array(names));
                }
            }
            key if KEEP.contains(&key) => {
                out.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    // `required` may only name declared properties.
    if let (Some(Value::Array(req)), Some(Value::Object(props))) =
        (out.get("required").cloned(), out.get("properties"))
    {
        let kept: Vec<Value> = req
            .into_iter()
            .filter(|n| n.as_str().is_some_and(|n| props.contains_key(n)))
            .collect();
        out.insert("required".into(), Value::Array(kept));
    }
    Value::Object(out)
}

/// A Gemini schema (`parameters`, upper-case `type`s allowed) as a JSON Schema for Claude:
/// `type` values lower-cased recursively. `parametersJsonSchema` needs no change.
pub(super) fn to_json_schema(schema: &Value) -> Value {
    to_json_schema_at(schema, 0)
}

fn to_json_schema_at(schema: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return json!({});
    }
    match schema {
        Value::Object(obj) => {
            let mut out = Map::new();
            for (k, v) in obj {
                let nv = match (k.as_str(), v) {
                    ("type", Value::String(t)) => Value::String(t.to_ascii_lowercase()),
                    ("properties", Value::Object(props)) => Value::Object(
                        props
                            .iter()
                            .map(|(n, s)| (n.clone(), to_json_schema_at(s, depth + 1)))
                            .collect(),
                    ),
                    ("items", s) => to_json_schema_at(s, depth + 1),
                    ("anyOf", Value::Array(l)) => {
                        Value::Array(l.iter().map(|s| to_json_schema_at(s, depth + 1)).collect())
                    }
                    _ => v.clone(),
                };
                out.insert(k.clone(), nv);
            }
            Value::Object(out)
        }
        _ => json!({"type": "object", "properties": {}}),
    }
}
