//! The Code Assist envelope (Gemini CLI with Google login, `…/v1internal:{method}`): a
//! generate request is the public Gemini request wrapped as
//! `{"model", "project", "user_prompt_id", "request": {…, "session_id"}}`, every answer and
//! every stream chunk is `{"response": {…}, "traceId"}`, and a token count is
//! `{"request": {"model": "models/…", "contents": […]}}` answered by a bare
//! `{"totalTokens": N}` (shapes from gemini-cli's `packages/core/src/code_assist/converter.ts`
//! and `server.ts`).
//!
//! Clients on `/v1internal` are unwrapped on the way in and wrapped on the way out;
//! `gemini-cli` providers get the opposite. Everything in between sees plain Gemini.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// The Code Assist methods cch serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `:generateContent`.
    Generate,
    /// `:streamGenerateContent` (SSE with `alt=sse`).
    StreamGenerate,
    /// `:countTokens`.
    CountTokens,
}

impl Method {
    /// Parses the method after the colon.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "generateContent" => Some(Self::Generate),
            "streamGenerateContent" => Some(Self::StreamGenerate),
            "countTokens" => Some(Self::CountTokens),
            _ => None,
        }
    }

    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generate => "generateContent",
            Self::StreamGenerate => "streamGenerateContent",
            Self::CountTokens => "countTokens",
        }
    }
}

/// What a `/v1internal` client's envelope carried besides the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The model (without a `models/` prefix; empty when the envelope names none, and then the
    /// URL must).
    pub model: String,
    /// The client's Code Assist project.
    pub project: Option<String>,
    /// Gemini CLI's id of the user prompt this call serves.
    pub user_prompt_id: Option<String>,
    /// Gemini CLI's session id (`request.session_id`).
    pub session_id: Option<String>,
}

#[derive(Deserialize)]
struct ClientCall<'a> {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    user_prompt_id: Option<String>,
    #[serde(borrow)]
    request: Option<&'a RawValue>,
}

/// Fields of the wrapped request that only Code Assist knows (the public API refuses unknown
/// names): moved out of the request into the [`Envelope`].
const CODE_ASSIST_ONLY: &[&str] = &["session_id", "labels", "model"];

fn model_name(m: &str) -> String {
    m.trim().trim_start_matches("models/").to_string()
}

/// Unwraps a `/v1internal` client's body: the public Gemini request (a generate request, or
/// `{"contents": …}` for a count) and the envelope. The error says what is wrong, for a 400.
pub fn unwrap_client_request(body: &[u8], method: Method) -> Result<(Vec<u8>, Envelope), String> {
    let call: ClientCall<'_> = serde_json::from_slice(body)
        .map_err(|e| format!("the Code Assist body is not a JSON envelope: {e}"))?;
    let raw = call
        .request
        .ok_or("the Code Assist body has no `request` object")?;
    let mut inner: Map<String, Value> = serde_json::from_str(raw.get())
        .map_err(|_| "the Code Assist `request` must be a JSON object".to_string())?;
    let inner_model = inner.get("model").and_then(Value::as_str).map(model_name);
    let session_id = inner
        .get("session_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    for f in CODE_ASSIST_ONLY {
        inner.remove(*f);
    }
    let model = call
        .model
        .as_deref()
        .map(model_name)
        .or(inner_model)
        .unwrap_or_default();
    let request = match method {
        Method::CountTokens => json!({ "contents": inner.remove("contents").unwrap_or(json!([])) }),
        _ => Value::Object(inner),
    };
    let envelope = Envelope {
        model,
        project: call.project.filter(|p| !p.is_empty()),
        user_prompt_id: call.user_prompt_id.filter(|p| !p.is_empty()),
        session_id,
    };
    Ok((request.to_string().into_bytes(), envelope))
}

/// Wraps a public Gemini generate request for a `gemini-cli` provider.
pub fn wrap_generate_request(
    request: Value,
    model: &str,
    project: Option<&str>,
    client: Option<&Envelope>,
) -> Value {
    let mut request = request;
    if let (Some(o), Some(s)) = (
        request.as_object_mut(),
        client.and_then(|c| c.session_id.as_deref()),
    ) {
        o.insert("session_id".into(), Value::String(s.to_string()));
    }
    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.to_string()));
    if let Some(p) = project.or(client.and_then(|c| c.project.as_deref())) {
        out.insert("project".into(), Value::String(p.to_string()));
    }
    if let Some(id) = client.and_then(|c| c.user_prompt_id.as_deref()) {
        out.insert("user_prompt_id".into(), Value::String(id.to_string()));
    }
    out.insert("request".into(), request);
    Value::Object(out)
}

/// A token count for a `gemini-cli` provider. Code Assist counts `contents` only, so a system
/// instruction (from a generate request wrapped as `generateContentRequest`, or given directly)
/// is counted as a leading user turn; tool declarations cannot be sent and are not counted.
pub fn count_request(public: &Value, model: &str) -> Value {
    let req = public.get("generateContentRequest").unwrap_or(public);
    let mut contents: Vec<Value> = Vec::new();
    let system = req
        .get("systemInstruction")
        .or_else(|| req.get("system_instruction"));
    if let Some(parts) = system.and_then(|s| s.get("parts")).filter(|p| p.is_array()) {
        contents.push(json!({"role": "user", "parts": parts}));
    }
    if let Some(c) = req.get("contents").and_then(Value::as_array) {
        contents.extend(c.iter().cloned());
    }
    json!({"request": {"model": format!("models/{model}"), "contents": contents}})
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    response: Option<&'a RawValue>,
}

/// The public answer inside a Code Assist answer or stream chunk (`{"response": …}`), as a
/// byte range of `body`; `None` when there is no `response` (an error, a count).
pub fn unwrap_answer(body: &[u8]) -> Option<std::ops::Range<usize>> {
    let a: Answer<'_> = serde_json::from_slice(body).ok()?;
    let raw = a.response?.get().as_bytes();
    let start = (raw.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    (start + raw.len() <= body.len()).then(|| start..start + raw.len())
}

#[derive(Deserialize)]
struct ErrorProbe {
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

/// A public Gemini answer (or chunk) wrapped for a `/v1internal` client; an error object is
/// left as it is (Code Assist errors are not wrapped).
pub fn wrap_answer(public: &[u8]) -> Option<Vec<u8>> {
    let probe: ErrorProbe = serde_json::from_slice(public).ok()?;
    if probe.error.is_some() {
        return None;
    }
    let mut out = Vec::with_capacity(public.len() + 14);
    out.extend_from_slice(b"{\"response\":");
    out.extend_from_slice(public);
    out.push(b'}');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What gemini-cli 0.x sends for a generate call (converter.ts `toGenerateContentRequest`).
    const CLI_GENERATE: &str = r#"{"model":"gemini-2.5-pro","project":"proj-9","user_prompt_id":"a1b2########1","request":{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"systemInstruction":{"role":"user","parts":[{"text":"be brief"}]},"tools":[{"functionDeclarations":[{"name":"ls","parametersJsonSchema":{"type":"object"}}]}],"generationConfig":{"temperature":0,"thinkingConfig":{"includeThoughts":true}},"session_id":"sess-42"}}"#;

    #[test]
    fn a_generate_call_unwraps_to_the_public_request() {
        let (body, env) =
            unwrap_client_request(CLI_GENERATE.as_bytes(), Method::Generate).expect("unwraps");
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["contents"][0]["parts"][0]["text"], "hi");
        assert_eq!(v["generationConfig"]["temperature"], 0);
        assert!(v.get("session_id").is_none());
        let (_, nameless) =
            unwrap_client_request(br#"{"request":{"contents":[]}}"#, Method::Generate)
                .expect("unwraps");
        assert_eq!(nameless.model, "");
        assert_eq!(
            env,
            Envelope {
                model: "gemini-2.5-pro".into(),
                project: Some("proj-9".into()),
                user_prompt_id: Some("a1b2########1".into()),
                session_id: Some("sess-42".into()),
            }
        );
    }

    #[test]
    fn a_count_call_takes_its_model_from_the_request() {
        let body = br#"{"request":{"model":"models/gemini-2.5-flash","contents":[{"role":"user","parts":[{"text":"count me"}]}]}}"#;
        let (inner, env) = unwrap_client_request(body, Method::CountTokens).expect("unwraps");
        assert_eq!(env.model, "gemini-2.5-flash");
        let v: Value = serde_json::from_slice(&inner).expect("json");
        assert_eq!(
            v,
            json!({"contents": [{"role": "user", "parts": [{"text": "count me"}]}]})
        );
    }

    #[test]
    fn bodies_that_are_not_envelopes_get_a_reason() {
        for (body, needle) in [
            (&b"{}"[..], "no `request`"),
            (b"[1]", "not a JSON envelope"),
            (br#"{"request":[]}"#, "must be a JSON object"),
        ] {
            let e = unwrap_client_request(body, Method::Generate).expect_err("refused");
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn provider_envelopes_carry_the_provider_project_first() {
        let client = Envelope {
            model: "m".into(),
            project: Some("client-proj".into()),
            user_prompt_id: Some("p1".into()),
            session_id: Some("s1".into()),
        };
        let v = wrap_generate_request(
            json!({"contents": []}),
            "gemini-x",
            Some("prov"),
            Some(&client),
        );
        assert_eq!(
            v,
            json!({"model": "gemini-x", "project": "prov", "user_prompt_id": "p1",
                   "request": {"contents": [], "session_id": "s1"}})
        );
        let bare = wrap_generate_request(json!({"contents": []}), "gemini-x", None, None);
        assert_eq!(
            bare,
            json!({"model": "gemini-x", "request": {"contents": []}})
        );
    }

    #[test]
    fn counts_fold_the_system_instruction_into_contents() {
        let public = json!({"generateContentRequest": {
            "systemInstruction": {"parts": [{"text": "sys"}]},
            "contents": [{"role": "user", "parts": [{"text": "u"}]}]}});
        assert_eq!(
            count_request(&public, "gemini-x"),
            json!({"request": {"model": "models/gemini-x", "contents": [
                {"role": "user", "parts": [{"text": "sys"}]},
                {"role": "user", "parts": [{"text": "u"}]}]}})
        );
    }

    #[test]
    fn answers_unwrap_without_copying_and_wrap_back() {
        let body =
            br#"{"response":{"candidates":[{"content":{"parts":[{"text":"x"}]}}]},"traceId":"t"}"#;
        let r = unwrap_answer(body).expect("a response");
        let inner = &body[r];
        assert_eq!(
            inner,
            br#"{"candidates":[{"content":{"parts":[{"text":"x"}]}}]}"#
        );
        let wrapped = wrap_answer(inner).expect("wrapped");
        assert_eq!(
            unwrap_answer(&wrapped).map(|r| wrapped[r].to_vec()),
            Some(inner.to_vec())
        );
        assert!(unwrap_answer(br#"{"error":{"code":403}}"#).is_none());
        assert!(unwrap_answer(br#"{"totalTokens":5}"#).is_none());
        assert!(wrap_answer(br#"{"error":{"code":429,"message":"m"}}"#).is_none());
    }
}
