//! Request-log rows for storage tests that only need valid, distinct rows.

use claude_code_hub::domain::request_log::RequestLog;

/// A successful `/v1/messages` row with request id `id` and every optional field empty.
pub fn minimal(id: &str) -> RequestLog {
    RequestLog {
        id: 0,
        request_id: id.into(),
        created_at: chrono::Utc::now(),
        user_id: None,
        key_id: None,
        provider_id: None,
        requested_model: None,
        forwarded_model: None,
        endpoint: "/v1/messages".into(),
        client_format: "claude".into(),
        status_code: 200,
        is_stream: false,
        input_tokens: 0,
        output_tokens: 0,
        cache_creation_5m_tokens: 0,
        cache_creation_1h_tokens: 0,
        cache_read_tokens: 0,
        cost_usd: rust_decimal::Decimal::ZERO,
        cost_known: true,
        duration_ms: 1,
        ttfb_ms: None,
        provider_chain: serde_json::json!([]),
        session_id: None,
        user_agent: None,
        error_message: None,
    }
}
