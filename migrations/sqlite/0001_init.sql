-- cch initial schema (SQLite).
-- Money is TEXT holding a decimal string (rounded to 12 fractional digits by the adapter, like
-- PostgreSQL's NUMERIC(24,12)). Time is TEXT, RFC 3339 UTC with exactly six fractional digits
-- (`2024-01-02T03:04:05.123456Z`), so text order is time order. Lists and maps are JSON TEXT.
-- Limits are flattened into the same nine columns in providers, users and api_keys.

CREATE TABLE providers (
    id                          INTEGER PRIMARY KEY AUTOINCREMENT,
    name                        TEXT NOT NULL,
    description                 TEXT NOT NULL,
    provider_type               TEXT NOT NULL,
    base_url                    TEXT NOT NULL,
    api_key                     TEXT NOT NULL,
    enabled                     INTEGER NOT NULL,
    priority                    INTEGER NOT NULL,
    weight                      INTEGER NOT NULL,
    cost_multiplier             TEXT NOT NULL,
    group_tag                   TEXT NOT NULL,
    allowed_models              TEXT NOT NULL,
    model_redirects             TEXT NOT NULL,
    extra_client_formats        TEXT NOT NULL,
    proxy_url                   TEXT,
    proxy_fallback_to_direct    INTEGER NOT NULL,
    rpm_limit                   INTEGER,
    limit_5h_usd                TEXT,
    limit_daily_usd             TEXT,
    daily_reset_mode            TEXT NOT NULL,
    daily_reset_time            TEXT NOT NULL,
    limit_weekly_usd            TEXT,
    limit_monthly_usd           TEXT,
    limit_total_usd             TEXT,
    limit_concurrent_sessions   INTEGER,
    first_byte_timeout_ms       INTEGER NOT NULL,
    idle_timeout_ms             INTEGER NOT NULL,
    request_timeout_ms          INTEGER NOT NULL,
    failure_threshold           INTEGER NOT NULL,
    open_duration_ms            INTEGER NOT NULL,
    half_open_success_threshold INTEGER NOT NULL,
    max_retry_attempts          INTEGER,
    created_at                  TEXT NOT NULL,
    updated_at                  TEXT NOT NULL,
    CONSTRAINT providers_name_key UNIQUE (name)
);

CREATE TABLE users (
    id                          INTEGER PRIMARY KEY AUTOINCREMENT,
    name                        TEXT NOT NULL,
    role                        TEXT NOT NULL,
    provider_group              TEXT NOT NULL,
    rpm_limit                   INTEGER,
    limit_5h_usd                TEXT,
    limit_daily_usd             TEXT,
    daily_reset_mode            TEXT NOT NULL,
    daily_reset_time            TEXT NOT NULL,
    limit_weekly_usd            TEXT,
    limit_monthly_usd           TEXT,
    limit_total_usd             TEXT,
    limit_concurrent_sessions   INTEGER,
    enabled                     INTEGER NOT NULL,
    expires_at                  TEXT,
    note                        TEXT NOT NULL,
    created_at                  TEXT NOT NULL,
    updated_at                  TEXT NOT NULL,
    CONSTRAINT users_name_key UNIQUE (name)
);

CREATE TABLE api_keys (
    id                          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id                     INTEGER NOT NULL,
    name                        TEXT NOT NULL,
    key_hash                    TEXT NOT NULL,
    key_last4                   TEXT NOT NULL,
    enabled                     INTEGER NOT NULL,
    expires_at                  TEXT,
    rpm_limit                   INTEGER,
    limit_5h_usd                TEXT,
    limit_daily_usd             TEXT,
    daily_reset_mode            TEXT NOT NULL,
    daily_reset_time            TEXT NOT NULL,
    limit_weekly_usd            TEXT,
    limit_monthly_usd           TEXT,
    limit_total_usd             TEXT,
    limit_concurrent_sessions   INTEGER,
    created_at                  TEXT NOT NULL,
    updated_at                  TEXT NOT NULL,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id, id);

CREATE TABLE model_prices (
    model                       TEXT PRIMARY KEY,
    input_per_mtok              TEXT NOT NULL,
    output_per_mtok             TEXT NOT NULL,
    cache_write_5m_per_mtok     TEXT NOT NULL,
    cache_write_1h_per_mtok     TEXT NOT NULL,
    cache_read_per_mtok         TEXT NOT NULL
);

CREATE TABLE system_settings (
    key                         TEXT PRIMARY KEY,
    value                       TEXT NOT NULL
);

-- No foreign keys: logs outlive the users, keys and providers they mention.
CREATE TABLE request_logs (
    id                          INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id                  TEXT NOT NULL,
    created_at                  TEXT NOT NULL,
    user_id                     INTEGER,
    key_id                      INTEGER,
    provider_id                 INTEGER,
    requested_model             TEXT,
    forwarded_model             TEXT,
    endpoint                    TEXT NOT NULL,
    client_format               TEXT NOT NULL,
    status_code                 INTEGER NOT NULL,
    is_stream                   INTEGER NOT NULL,
    input_tokens                INTEGER NOT NULL,
    output_tokens               INTEGER NOT NULL,
    cache_creation_5m_tokens    INTEGER NOT NULL,
    cache_creation_1h_tokens    INTEGER NOT NULL,
    cache_read_tokens           INTEGER NOT NULL,
    cost_usd                    TEXT NOT NULL,
    cost_known                  INTEGER NOT NULL,
    duration_ms                 INTEGER NOT NULL,
    ttfb_ms                     INTEGER,
    provider_chain              TEXT NOT NULL,
    session_id                  TEXT,
    user_agent                  TEXT,
    error_message               TEXT,
    CONSTRAINT request_logs_request_id_key UNIQUE (request_id)
);
-- Every filter is paired with `id` so "WHERE f = ? AND id < cursor ORDER BY id DESC" walks one
-- index range.
CREATE INDEX request_logs_created_at_idx ON request_logs (created_at, id);
CREATE INDEX request_logs_user_id_idx ON request_logs (user_id, id);
CREATE INDEX request_logs_key_id_idx ON request_logs (key_id, id);
CREATE INDEX request_logs_provider_id_idx ON request_logs (provider_id, id);
CREATE INDEX request_logs_session_id_idx ON request_logs (session_id, id);
CREATE INDEX request_logs_requested_model_idx ON request_logs (requested_model, id);
CREATE INDEX request_logs_forwarded_model_idx ON request_logs (forwarded_model, id);
