//! `GET /api/v1/logs/export`: the filtered request log as CSV, streamed page by page (1,000
//! rows at a time, newest first), so memory stays bounded whatever the size.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use poem::Body;
use poem_openapi::param::Query;
use poem_openapi::payload::Binary;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::AdminAuth;
use super::error::ApiError;
use crate::app::admin::{LogQuery, MAX_LOG_PAGE};
use crate::app::context::AppContext;
use crate::domain::csv::push_row;
use crate::domain::request_log::RequestLog;

/// The CSV columns, in order.
pub const COLUMNS: [&str; 25] = [
    "id",
    "request_id",
    "created_at",
    "user_id",
    "key_id",
    "provider_id",
    "requested_model",
    "forwarded_model",
    "endpoint",
    "client_format",
    "status_code",
    "is_stream",
    "input_tokens",
    "output_tokens",
    "cache_creation_5m_tokens",
    "cache_creation_1h_tokens",
    "cache_read_tokens",
    "cost_usd",
    "cost_known",
    "duration_ms",
    "ttfb_ms",
    "session_id",
    "user_agent",
    "error_message",
    "provider_chain",
];

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn push_log(out: &mut String, r: &RequestLog) {
    let fields = [
        r.id.to_string(),
        r.request_id.clone(),
        r.created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        opt(&r.user_id),
        opt(&r.key_id),
        opt(&r.provider_id),
        opt(&r.requested_model),
        opt(&r.forwarded_model),
        r.endpoint.clone(),
        r.client_format.clone(),
        r.status_code.to_string(),
        r.is_stream.to_string(),
        r.input_tokens.to_string(),
        r.output_tokens.to_string(),
        r.cache_creation_5m_tokens.to_string(),
        r.cache_creation_1h_tokens.to_string(),
        r.cache_read_tokens.to_string(),
        r.cost_usd.normalize().to_string(),
        r.cost_known.to_string(),
        r.duration_ms.to_string(),
        opt(&r.ttfb_ms),
        opt(&r.session_id),
        opt(&r.user_agent),
        opt(&r.error_message),
        r.provider_chain.to_string(),
    ];
    push_row(out, fields.iter().map(String::as_str));
}

/// A CSV download.
#[derive(ApiResponse)]
pub enum CsvResponse {
    /// The rows as CSV (header line first), streamed.
    #[oai(status = 200, content_type = "text/csv; charset=utf-8")]
    Csv(
        Binary<Body>,
        /// `attachment; filename="request-logs.csv"`.
        #[oai(header = "content-disposition")]
        String,
    ),
}

/// What the stream still has to send.
struct ExportState {
    ctx: Arc<AppContext>,
    query: LogQuery,
    /// The first page (fetched before answering, so a bad filter is a 400).
    first: Option<Vec<RequestLog>>,
    cursor: Option<String>,
    done: bool,
}

async fn next_chunk(mut st: ExportState) -> Option<(Result<Bytes, std::io::Error>, ExportState)> {
    if st.done {
        return None;
    }
    let rows = match st.first.take() {
        Some(rows) => rows,
        None => {
            let cursor = st.cursor.take()?;
            let page = st
                .ctx
                .admin
                .list_logs(LogQuery {
                    cursor: Some(cursor),
                    ..st.query.clone()
                })
                .await;
            match page {
                Ok(p) => {
                    st.cursor = p.next_cursor;
                    p.rows
                }
                Err(e) => {
                    // The client sees a cut download rather than a file that looks complete.
                    tracing::warn!(error = %e, "log export stopped: storage failed");
                    st.done = true;
                    return Some((Err(std::io::Error::other("log export failed")), st));
                }
            }
        }
    };
    if st.cursor.is_none() {
        st.done = true;
    }
    let mut out = String::with_capacity(rows.len() * 300);
    for r in &rows {
        push_log(&mut out, r);
    }
    Some((Ok(Bytes::from(out)), st))
}

/// Request-log export.
pub struct ExportApi {
    /// Shared application context.
    pub ctx: Arc<AppContext>,
}

#[OpenApi(prefix_path = "/logs", tag = "ApiTags::Logs")]
impl ExportApi {
    /// Download the request logs matching the filters (the same as `GET /logs`) as CSV, newest
    /// first. Streamed 1,000 rows at a time: any size, bounded memory. Fields a spreadsheet
    /// would read as a formula are prefixed with `'`.
    #[oai(path = "/export", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn export(
        &self,
        _auth: AdminAuth,
        /// Only this user.
        user_id: Query<Option<i64>>,
        /// Only this key.
        key_id: Query<Option<i64>>,
        /// Only this provider.
        provider_id: Query<Option<i64>>,
        /// Requested or forwarded model equals this.
        model: Query<Option<String>>,
        /// 2, 4 or 5 (2xx, 4xx, 5xx).
        status_class: Query<Option<i32>>,
        /// Created at or after (RFC 3339).
        from: Query<Option<DateTime<Utc>>>,
        /// Created before (RFC 3339).
        to: Query<Option<DateTime<Utc>>>,
        /// Only this session.
        session_id: Query<Option<String>>,
    ) -> Result<CsvResponse, ApiError> {
        let query = LogQuery {
            user_id: user_id.0,
            key_id: key_id.0,
            provider_id: provider_id.0,
            model: model.0,
            status_class: status_class.0,
            from: from.0,
            to: to.0,
            session_id: session_id.0,
            limit: Some(MAX_LOG_PAGE),
            cursor: None,
        };
        let first = self.ctx.admin.list_logs(query.clone()).await?;
        let mut header = String::new();
        push_row(&mut header, COLUMNS);
        let state = ExportState {
            ctx: Arc::clone(&self.ctx),
            query,
            cursor: first.next_cursor,
            first: Some(first.rows),
            done: false,
        };
        let head = futures_util::stream::once(async move { Ok(Bytes::from(header)) });
        let rows = futures_util::stream::unfold(state, next_chunk);
        let body = Body::from_bytes_stream(futures_util::StreamExt::chain(head, rows));
        Ok(CsvResponse::Csv(
            Binary(body),
            "attachment; filename=\"request-logs.csv\"".into(),
        ))
    }
}
