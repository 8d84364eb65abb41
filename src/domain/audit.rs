//! The admin audit log: who changed what, when and from where. One entry per admin write
//! (create, update, delete, reset, test, import, login, logout, failed login), with the fields
//! that changed, old and new, secrets masked. Entries are made by the HTTP front from the
//! request and the resource's state before and after; this module holds the pure parts: the
//! entry, its filter, and the field diff with its masking.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most fields recorded per entry (a diff of a larger object is cut, and says so).
pub const MAX_CHANGES: usize = 100;
/// Longest value recorded per field (characters; longer values are cut with `…`).
pub const MAX_VALUE_CHARS: usize = 500;
/// What a secret's value is shown as.
pub const MASK: &str = "••••••";

/// One admin write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Row id (0 before it is stored).
    pub id: i64,
    /// When the write was answered.
    pub at: DateTime<Utc>,
    /// Who: `admin` (the admin token), `user:<id>/key:<id>` (a console session of a key whose
    /// user has role admin), or `anonymous` (a failed login).
    pub actor: String,
    /// The client's address.
    pub ip: Option<String>,
    /// The kind of write, e.g. `update`, `delete`, `login_failed` (see [`action_of`]).
    pub action: String,
    /// Method and route with ids replaced, e.g. `PATCH /providers/{id}`.
    pub route: String,
    /// The resource, e.g. `providers/12`.
    pub target: String,
    /// The answer's status.
    pub status: u16,
    /// Changed fields, old and new (secrets masked).
    pub changes: Vec<FieldChange>,
}

/// One field's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The field, dotted for nested objects (`limits.daily_usd`).
    pub field: String,
    /// The value before (absent for a created resource or a new field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// The value after (absent for a deleted resource or a removed field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// Which entries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only targets starting with this (e.g. `providers` or `providers/12`).
    pub target_prefix: Option<String>,
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Before.
    pub to: Option<DateTime<Utc>>,
    /// Only ids below this (the next page).
    pub before_id: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// Whether a field holds a secret: its value is never recorded, only that it changed.
pub fn is_secret_field(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let last = n.rsplit('.').next().unwrap_or(&n);
    if last.ends_with("_id") || last == "id" || last.ends_with("_ids") {
        return false;
    }
    [
        "key",
        "secret",
        "token",
        "password",
        "credential",
        "authorization",
    ]
    .iter()
    .any(|s| last.contains(s))
}

fn shown(field: &str, v: &Value) -> Value {
    if is_secret_field(field) && !v.is_null() {
        return Value::String(MASK.into());
    }
    match v {
        Value::String(s) if s.chars().count() > MAX_VALUE_CHARS => {
            let mut cut: String = s.chars().take(MAX_VALUE_CHARS).collect();
            cut.push('…');
            Value::String(cut)
        }
        Value::Array(_) | Value::Object(_) => {
            let safe = redacted(v, 0);
            let text = safe.to_string();
            if text.chars().count() > MAX_VALUE_CHARS {
                let mut cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
                cut.push('…');
                Value::String(cut)
            } else {
                safe
            }
        }
        other => other.clone(),
    }
}

/// A copy of `v` with the value of every secret-named key masked, at any depth (a list of
/// objects is recorded as text, and must not carry a nested secret).
fn redacted(v: &Value, depth: usize) -> Value {
    if depth > 32 {
        return Value::String(MASK.into());
    }
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, x)| {
                    let x = if is_secret_field(k) && !x.is_null() {
                        Value::String(MASK.into())
                    } else {
                        redacted(x, depth + 1)
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| redacted(x, depth + 1)).collect()),
        other => other.clone(),
    }
}

fn flatten(prefix: &str, v: &Value, depth: usize, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) if depth < 3 && !is_secret_field(prefix) => {
            for (k, child) in map {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, child, depth + 1, out);
            }
        }
        _ => out.push((prefix.to_string(), v.clone())),
    }
}

/// The fields that differ between the resource `before` and `after` a write (either may be
/// absent: a creation, a deletion), nested objects flattened to dotted names, secrets masked,
/// at most [`MAX_CHANGES`]. A secret that changed shows as masked on both sides.
pub fn field_changes(before: Option<&Value>, after: Option<&Value>) -> Vec<FieldChange> {
    let mut old = Vec::new();
    let mut new = Vec::new();
    if let Some(b) = before {
        flatten("", b, 0, &mut old);
    }
    if let Some(a) = after {
        flatten("", a, 0, &mut new);
    }
    let mut changes = Vec::new();
    for (field, ov) in &old {
        let nv = new.iter().find(|(f, _)| f == field).map(|(_, v)| v);
        if nv != Some(ov) {
            changes.push(FieldChange {
                field: field.clone(),
                old: Some(shown(field, ov)),
                new: nv.map(|v| shown(field, v)),
            });
        }
    }
    for (field, nv) in &new {
        if !old.iter().any(|(f, _)| f == field) {
            changes.push(FieldChange {
                field: field.clone(),
                old: None,
                new: Some(shown(field, nv)),
            });
        }
    }
    changes.truncate(MAX_CHANGES);
    changes
}

/// The kind of write a method on a route is: `create` (a POST answered 201, or to a top-level
/// collection), `update`, `delete`, or the route's last word for actions (`reset`, `test`, `restore`, `import`, `cleanup`, …), `login`, `logout`,
/// `login_failed`.
pub fn action_of(method: &str, route: &str, status: u16) -> String {
    let last = route
        .rsplit('/')
        .find(|s| !s.is_empty() && *s != "{id}" && *s != "{name}")
        .unwrap_or("");
    if route.starts_with("/auth/") {
        return match (last, (200..300).contains(&status)) {
            ("login", true) => "login".into(),
            ("login", false) => "login_failed".into(),
            (other, _) => other.into(),
        };
    }
    match method {
        "DELETE" => "delete".into(),
        "PATCH" | "PUT" => "update".into(),
        _ if status == 201 || route.matches('/').count() <= 1 => "create".into(),
        _ => last.replace('-', "_"),
    }
}

/// The route with its ids replaced by `{id}` (numeric segments) so entries group by route.
pub fn route_template(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
