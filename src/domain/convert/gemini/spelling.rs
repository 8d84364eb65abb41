//! Gemini requests in both JSON spellings. Google's servers parse proto3 JSON, which accepts
//! every field as lowerCamelCase and as its original snake_case name; the `google-genai` Python
//! SDK 3.x sends some fields in snake_case (captured from SDK 3.6.1: `functionDeclarations[]
//! .parameters_json_schema`, `.response_json_schema`, `generationConfig.thinkingConfig
//! .include_thoughts` / `.thinking_budget`). The converter reads lowerCamelCase only, so every
//! request is brought to that spelling here, once, before any field is read.
//!
//! Field names are rewritten, never values, and never the keys of free-form data: function
//! call arguments, function responses, JSON Schemas (`parametersJsonSchema`,
//! `responseJsonSchema`), labels, and the property names of a Gemini `Schema`. When a field is
//! present in both spellings, the lowerCamelCase one wins.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// How far a request is walked (deeper values are kept as they are).
const MAX_DEPTH: usize = 64;

/// What a JSON value is, for the walk.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A proto message: its field names are rewritten.
    Message,
    /// A Gemini `Schema` message: field names rewritten, `properties` keys kept.
    Schema,
    /// Free-form data (a `Struct` or a JSON Schema): nothing below is touched.
    Free,
}

/// The lowerCamelCase spelling of a proto field name (`parameters_json_schema` →
/// `parametersJsonSchema`); names without an inner underscore are returned as they are.
pub fn lower_camel(name: &str) -> Cow<'_, str> {
    if !name.trim_start_matches('_').contains('_') {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for (i, c) in name.chars().enumerate() {
        if c == '_' && i > 0 {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// What the value of field `name` (lowerCamelCase) of a `parent` value is.
fn child_kind(parent: Kind, name: &str) -> Kind {
    match parent {
        Kind::Free => Kind::Free,
        Kind::Message => match name {
            "args" | "response" | "parametersJsonSchema" | "responseJsonSchema" | "labels" => {
                Kind::Free
            }
            "parameters" | "responseSchema" => Kind::Schema,
            _ => Kind::Message,
        },
        Kind::Schema => match name {
            "items" | "anyOf" => Kind::Schema,
            // `properties` is handled by the caller (its keys are property names).
            _ => Kind::Free,
        },
    }
}

fn needs_rewrite(v: &Value, kind: Kind, depth: usize) -> bool {
    if kind == Kind::Free || depth > MAX_DEPTH {
        return false;
    }
    match v {
        Value::Array(items) => items.iter().any(|i| needs_rewrite(i, kind, depth + 1)),
        Value::Object(o) => o.iter().any(|(k, v)| {
            let name = lower_camel(k);
            if matches!(name, Cow::Owned(_)) {
                return true;
            }
            if kind == Kind::Schema && name == "properties" {
                return v.as_object().is_some_and(|props| {
                    props
                        .values()
                        .any(|p| needs_rewrite(p, Kind::Schema, depth + 2))
                });
            }
            needs_rewrite(v, child_kind(kind, &name), depth + 1)
        }),
        _ => false,
    }
}

fn rewrite(v: &Value, kind: Kind, depth: usize) -> Value {
    if kind == Kind::Free || depth > MAX_DEPTH {
        return v.clone();
    }
    match v {
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| rewrite(i, kind, depth + 1)).collect())
        }
        Value::Object(o) => {
            let mut out = Map::with_capacity(o.len());
            // lowerCamelCase fields first, so they win over a snake_case twin.
            let (camel, snake): (Vec<_>, Vec<_>) = o
                .iter()
                .partition(|(k, _)| matches!(lower_camel(k), Cow::Borrowed(_)));
            for (k, v) in camel.into_iter().chain(snake) {
                let name = lower_camel(k).into_owned();
                if out.contains_key(&name) {
                    continue;
                }
                let value = if kind == Kind::Schema && name == "properties" {
                    match v.as_object() {
                        Some(props) => Value::Object(
                            props
                                .iter()
                                .map(|(p, s)| (p.clone(), rewrite(s, Kind::Schema, depth + 2)))
                                .collect(),
                        ),
                        None => v.clone(),
                    }
                } else {
                    rewrite(v, child_kind(kind, &name), depth + 1)
                };
                out.insert(name, value);
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// A Gemini request (or Code Assist envelope) with every field name in lowerCamelCase;
/// borrowed when it already is (the common case costs one read-only walk).
pub fn to_lower_camel(body: &Value) -> Cow<'_, Value> {
    if needs_rewrite(body, Kind::Message, 0) {
        Cow::Owned(rewrite(body, Kind::Message, 0))
    } else {
        Cow::Borrowed(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_camel_cased() {
        assert_eq!(
            lower_camel("parameters_json_schema"),
            "parametersJsonSchema"
        );
        assert_eq!(lower_camel("include_thoughts"), "includeThoughts");
        assert_eq!(lower_camel("text"), "text");
        assert_eq!(lower_camel("_private"), "_private");
    }

    /// The body google-genai 3.6.1 sent for a tool call with thinking on (captured on the
    /// wire), plus the snake_case spelling of every other field cch reads.
    #[test]
    fn every_field_cch_reads_is_found_in_either_spelling() {
        let snake = json!({
            "contents": [{"role": "user", "parts": [
                {"text": "hi"},
                {"inline_data": {"mime_type": "image/png", "data": "AAAA"}},
                {"file_data": {"mime_type": "application/pdf", "file_uri": "gs://b/f"}},
                {"function_call": {"name": "f", "args": {"city_name": "Paris"}}, "thought_signature": "c2ln"},
                {"function_response": {"name": "f", "response": {"temp_c": 20}}}]}],
            "system_instruction": {"parts": [{"text": "be brief"}]},
            "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "tools": [{"function_declarations": [
                {"name": "get_weather", "parameters_json_schema":
                    {"type": "object", "properties": {"city_name": {"type": "string"}}, "required": ["city_name"]}},
                {"name": "g", "parameters": {"type": "OBJECT", "properties":
                    {"max_items": {"type": "ARRAY", "max_items": 3, "items": {"type": "STRING", "min_length": 1}}}}}]}],
            "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["get_weather"]}},
            "generation_config": {"max_output_tokens": 50, "stop_sequences": ["x"], "top_p": 0.5,
                "response_mime_type": "application/json", "response_schema": {"type": "OBJECT", "property_ordering": ["a"]},
                "thinking_config": {"include_thoughts": true, "thinking_budget": 1024}},
            "cached_content": null,
            "labels": {"team_name": "x"}
        });
        let camel = to_lower_camel(&snake).into_owned();
        assert_eq!(
            camel,
            json!({
                "contents": [{"role": "user", "parts": [
                    {"text": "hi"},
                    {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                    {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/f"}},
                    {"functionCall": {"name": "f", "args": {"city_name": "Paris"}}, "thoughtSignature": "c2ln"},
                    {"functionResponse": {"name": "f", "response": {"temp_c": 20}}}]}],
                "systemInstruction": {"parts": [{"text": "be brief"}]},
                "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
                "tools": [{"functionDeclarations": [
                    {"name": "get_weather", "parametersJsonSchema":
                        {"type": "object", "properties": {"city_name": {"type": "string"}}, "required": ["city_name"]}},
                    {"name": "g", "parameters": {"type": "OBJECT", "properties":
                        {"max_items": {"type": "ARRAY", "maxItems": 3, "items": {"type": "STRING", "minLength": 1}}}}}]}],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
                "generationConfig": {"maxOutputTokens": 50, "stopSequences": ["x"], "topP": 0.5,
                    "responseMimeType": "application/json", "responseSchema": {"type": "OBJECT", "propertyOrdering": ["a"]},
                    "thinkingConfig": {"includeThoughts": true, "thinkingBudget": 1024}},
                "cachedContent": null,
                "labels": {"team_name": "x"}
            })
        );
    }

    #[test]
    fn camel_case_bodies_are_borrowed_and_camel_case_wins() {
        let camel =
            json!({"contents": [{"parts": [{"functionCall": {"name": "f", "args": {"a_b": 1}}}]}]});
        assert!(matches!(to_lower_camel(&camel), Cow::Borrowed(_)));
        let both = json!({"generationConfig": {"maxOutputTokens": 10, "max_output_tokens": 99}});
        assert_eq!(
            to_lower_camel(&both).into_owned(),
            json!({"generationConfig": {"maxOutputTokens": 10}})
        );
    }
}
