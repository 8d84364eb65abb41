//! The custom target's JSON body template. The template must itself be JSON; placeholders are
//! replaced inside its string values, so no value can break the JSON or add keys:
//! `{{event}}`, `{{title}}`, `{{text}}`, `{{time}}` (RFC 3339), `{{level}}` and `{{count}}`
//! are substituted as text; a string that is exactly `"{{fields}}"` becomes an object of the
//! fields (label → value), elsewhere `{{fields}}` becomes `label: value` lines.

use serde_json::{Map, Value};

/// The template used when a custom target has none.
pub const DEFAULT_TEMPLATE: &str = r#"{"event":"{{event}}","level":"{{level}}","title":"{{title}}","text":"{{text}}","fields":"{{fields}}","time":"{{time}}","count":"{{count}}"}"#;

/// The values placeholders stand for.
#[derive(Debug, Clone)]
pub struct Values<'a> {
    /// Event wire name.
    pub event: &'a str,
    /// Level wire name.
    pub level: &'a str,
    /// Title in the target's language.
    pub title: &'a str,
    /// Text in the target's language.
    pub text: &'a str,
    /// Labelled values in the target's language.
    pub fields: &'a [(String, String)],
    /// RFC 3339 time of the event.
    pub time: &'a str,
    /// How many events this message stands for.
    pub count: u32,
}

/// Checks that `template` is a JSON object or array (placeholders are not checked).
pub fn check(template: &str) -> Result<(), String> {
    if template.len() > 16 * 1024 {
        return Err("at most 16 KiB".into());
    }
    match serde_json::from_str::<Value>(template) {
        Ok(Value::Object(_)) | Ok(Value::Array(_)) => Ok(()),
        Ok(_) => Err("must be a JSON object or array".into()),
        Err(e) => Err(format!("not valid JSON: {e}")),
    }
}

/// Fills `template` with `v` and returns the JSON body.
pub fn render(template: &str, v: &Values<'_>) -> Result<Value, String> {
    check(template)?;
    let tpl: Value = serde_json::from_str(template).map_err(|e| e.to_string())?;
    Ok(fill(tpl, v))
}

fn fill(node: Value, v: &Values<'_>) -> Value {
    match node {
        Value::String(s) if s.trim() == "{{fields}}" => {
            let mut m = Map::new();
            for (k, val) in v.fields {
                m.insert(k.clone(), Value::String(val.clone()));
            }
            Value::Object(m)
        }
        Value::String(s) => Value::String(substitute(&s, v)),
        Value::Array(a) => Value::Array(a.into_iter().map(|n| fill(n, v)).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, n)| (k, fill(n, v))).collect()),
        other => other,
    }
}

fn substitute(s: &str, v: &Values<'_>) -> String {
    if !s.contains("{{") {
        return s.to_string();
    }
    let fields = v
        .fields
        .iter()
        .map(|(k, val)| format!("{k}: {val}"))
        .collect::<Vec<_>>()
        .join("\n");
    // One pass, so a value that itself contains `{{title}}` is not expanded again.
    let mut out = String::with_capacity(s.len() + 64);
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        let value = match name {
            "event" => Some(v.event.to_string()),
            "level" => Some(v.level.to_string()),
            "title" => Some(v.title.to_string()),
            "text" => Some(v.text.to_string()),
            "time" => Some(v.time.to_string()),
            "count" => Some(v.count.to_string()),
            "fields" => Some(fields.clone()),
            _ => None,
        };
        match value {
            Some(val) => out.push_str(&val),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values<'a>(fields: &'a [(String, String)]) -> Values<'a> {
        Values {
            event: "breaker_opened",
            level: "critical",
            title: "Breaker \"opened\" {{text}}",
            text: "line1\nline2",
            fields,
            time: "2026-01-01T00:00:00Z",
            count: 3,
        }
    }

    #[test]
    fn placeholders_fill_strings_and_fields_object() {
        let fields = vec![("Provider".to_string(), "p\"1".to_string())];
        let tpl = r#"{"msg":"[{{event}}] {{title}} at {{time}} x{{count}} {{unknown}}","data":{"f":"{{fields}}","t":"{{text}}"},"n":1,"list":["{{level}}"]}"#;
        let body = render(tpl, &values(&fields)).unwrap_or_default();
        assert_eq!(
            body,
            json!({
                "msg": "[breaker_opened] Breaker \"opened\" {{text}} at 2026-01-01T00:00:00Z x3 {{unknown}}",
                "data": {"f": {"Provider": "p\"1"}, "t": "line1\nline2"},
                "n": 1,
                "list": ["critical"]
            })
        );
    }

    #[test]
    fn rejects_templates_that_are_not_json_objects() {
        assert!(check("{\"a\": {{title}}}").is_err());
        assert!(check("\"x\"").is_err());
        assert!(check(DEFAULT_TEMPLATE).is_ok());
    }
}
