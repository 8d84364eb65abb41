//! Stage 1 of the pipeline: from the client's bytes to what routing needs (the parsed body, the
//! model, the stream flag, the session) and the facts the request log will carry. Nothing here
//! touches a limit, a provider or the network.

use std::sync::Arc;
use std::time::Instant;

use crate::domain::api_key::ApiKey;
use crate::domain::format::ClientFormat;
use crate::domain::session::{
    SessionSource, claude_session_id, derived_session_id, openai_session_id, sanitize_session_id,
};
use crate::domain::user::User;

use super::body::RequestBody;
use super::record::{Recorder, RequestFacts};
use super::{ClientRequest, ProxyResponse, ProxyService};
use crate::app::snapshot::ConfigSnapshot;

/// A request that passed the body checks, ready for admission and routing.
pub(super) struct Inbound {
    /// The configuration this request is served with, from start to end.
    pub snap: Arc<ConfigSnapshot>,
    /// The authenticated user.
    pub user: Arc<User>,
    /// The authenticated key.
    pub key: Arc<ApiKey>,
    /// The client's body, parsed lazily.
    pub body: RequestBody,
    /// The model the client asked for.
    pub model: String,
    /// Whether the client asked for a stream.
    pub is_stream: bool,
    /// The session id (client-given or derived).
    pub session_id: String,
    /// What the request log row starts from.
    pub facts: RequestFacts,
    /// Writes the request's log row and spend when it ends.
    pub recorder: Arc<Recorder>,
}

impl ProxyService {
    /// Stage 1: the routable body (400 for a body that cannot be routed, logged), the session
    /// and the request facts.
    pub(super) fn inbound(&self, req: &ClientRequest) -> Result<Inbound, ProxyResponse> {
        let started = Instant::now();
        let snap = self.snapshot.get();
        let (body, model) = self.routable_body(req, req.caller.ids())?;
        let is_stream = req.path_stream || body.head.stream.unwrap_or(false);
        let key = req.caller.key.clone();
        let session_id = session_of(req, &body, key.id);
        let facts = RequestFacts {
            request_id: req.request_id.clone(),
            span: tracing::Span::current(),
            created_at: self.clock.now(),
            started,
            user_id: Some(req.caller.user.id),
            key_id: Some(key.id),
            requested_model: Some(model.clone()),
            endpoint: req.path.clone(),
            format: req.format,
            is_stream,
            session_id: Some(session_id.clone()),
            user_agent: req.header("user-agent").map(|s| super::bounded(s, 512)),
        };
        let recorder = Arc::new(Recorder {
            logs: self.logs.clone(),
            prices: snap.prices.clone(),
            limiter: self.limiter.clone(),
            metrics: self.metrics.clone(),
        });
        Ok(Inbound {
            snap,
            user: req.caller.user.clone(),
            key,
            body,
            model,
            is_stream,
            session_id,
            facts,
            recorder,
        })
    }
}

/// The request's session id. Ids come from headers and small fields; only the derived fallback
/// needs the whole conversation, so only then is the full body parsed.
fn session_of(req: &ClientRequest, body: &RequestBody, key_id: i64) -> String {
    let small = body.session_fields();
    let session = match req.format {
        ClientFormat::Claude => {
            let header = req.header("x-claude-code-session-id");
            let s = claude_session_id(&small, header, key_id);
            if s.source == SessionSource::Derived {
                claude_session_id(body.value(), header, key_id)
            } else {
                s
            }
        }
        ClientFormat::OpenAi | ClientFormat::Response => {
            let header = req.header("session-id");
            let s = openai_session_id(&small, header, key_id);
            if s.source == SessionSource::Derived {
                openai_session_id(body.value(), header, key_id)
            } else {
                s
            }
        }
        ClientFormat::Gemini => {
            // Gemini CLI's own session id, when it came through the Code Assist envelope.
            let given = req
                .code_assist
                .as_ref()
                .and_then(|e| e.session_id.as_deref())
                .and_then(sanitize_session_id);
            match given {
                Some(id) => return id,
                None => derived_session_id(key_id, body.value()),
            }
        }
    };
    session.id
}
