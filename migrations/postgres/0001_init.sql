-- cch initial schema (PostgreSQL).
-- Money is NUMERIC(24,12): 12 integer digits and 12 fractional digits.
-- Limits are flattened into the same nine columns in providers, users and api_keys.

CREATE TABLE providers (
    id                          BIGSERIAL PRIMARY KEY,
    name                        TEXT NOT NULL,
    description                 TEXT NOT NULL,
    provider_type               TEXT NOT NULL,
    base_url                    TEXT NOT NULL,
    api_key                     TEXT NOT NULL,
    enabled                     BOOLEAN NOT NULL,
    priority                    INTEGER NOT NULL,
    weight                      INTEGER NOT NULL,
    cost_multiplier             NUMERIC(24, 12) NOT NULL,
    group_tag                   TEXT NOT NULL,
    allowed_models              JSONB NOT NULL,
    model_redirects             JSONB NOT NULL,
    extra_client_formats        JSONB NOT NULL,
    proxy_url                   TEXT,
    proxy_fallback_to_direct    BOOLEAN NOT NULL,
    rpm_limit                   INTEGER,
    limit_5h_usd                NUMERIC(24, 12),
    limit_daily_usd             NUMERIC(24, 12),
    daily_reset_mode            TEXT NOT NULL,
    daily_reset_time            TEXT NOT NULL,
    limit_weekly_usd            NUMERIC(24, 12),
    limit_monthly_usd           NUMERIC(24, 12),
    limit_total_usd             NUMERIC(24, 12),
    limit_concurrent_sessions   INTEGER,
    first_byte_timeout_ms       BIGINT NOT NULL,
    idle_timeout_ms             BIGINT NOT NULL,
    request_timeout_ms          BIGINT NOT NULL,
    failure_threshold           INTEGER NOT NULL,
    open_duration_ms            BIGINT NOT NULL,
    half_open_success_threshold INTEGER NOT NULL,
    max_retry_attempts          INTEGER,
    created_at                  TIMESTAMPTZ NOT NULL,
    updated_at                  TIMESTAMPTZ NOT NULL,
    CONSTRAINT providers_name_key UNIQUE (name)
);

CREATE TABLE users (
    id                          BIGSERIAL PRIMARY KEY,
    name                        TEXT NOT NULL,
    role                        TEXT NOT NULL,
    provider_group              TEXT NOT NULL,
    rpm_limit                   INTEGER,
    limit_5h_usd                NUMERIC(24, 12),
    limit_daily_usd             NUMERIC(24, 12),
    daily_reset_mode            TEXT NOT NULL,
    daily_reset_time            TEXT NOT NULL,
    limit_weekly_usd            NUMERIC(24, 12),
    limit_monthly_usd           NUMERIC(24, 12),
    limit_total_usd             NUMERIC(24, 12),
    limit_concurrent_sessions   INTEGER,
    enabled                     BOOLEAN NOT NULL,
    expires_at                  TIMESTAMPTZ,
    note                        TEXT NOT NULL,
    created_at                  TIMESTAMPTZ NOT NULL,
    updated_at                  TIMESTAMPTZ NOT NULL,
    CONSTRAINT users_name_key UNIQUE (name)
);

CREATE TABLE api_keys (
    id                          BIGSERIAL PRIMARY KEY,
    user_id                     BIGINT NOT NULL,
    name                        TEXT NOT NULL,
    key_hash                    TEXT NOT NULL,
    key_last4                   TEXT NOT NULL,
    enabled                     BOOLEAN NOT NULL,
    expires_at                  TIMESTAMPTZ,
    rpm_limit                   INTEGER,
    limit_5h_usd                NUMERIC(24, 12),
    limit_daily_usd             NUMERIC(24, 12),
    daily_reset_mode            TEXT NOT NULL,
    daily_reset_time            TEXT NOT NULL,
    limit_weekly_usd            NUMERIC(24, 12),
    limit_monthly_usd           NUMERIC(24, 12),
    limit_total_usd             NUMERIC(24, 12),
    limit_concurrent_sessions   INTEGER,
    created_at                  TIMESTAMPTZ NOT NULL,
    updated_at                  TIMESTAMPTZ NOT NULL,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id, id);

CREATE TABLE model_prices (
    model                       TEXT PRIMARY KEY,
    input_per_mtok              NUMERIC(24, 12) NOT NULL,
    output_per_mtok             NUMERIC(24, 12) NOT NULL,
    cache_write_5m_per_mtok     NUMERIC(24, 12) NOT NULL,
    cache_write_1h_per_mtok     NUMERIC(24, 12) NOT NULL,
    cache_read_per_mtok         NUMERIC(24, 12) NOT NULL
);

CREATE TABLE system_settings (
    key                         TEXT PRIMARY KEY,
    value                       JSONB NOT NULL
);

-- No foreign keys: logs outlive the users, keys and providers they mention.
CREATE TABLE request_logs (
    id                          BIGSERIAL PRIMARY KEY,
    request_id                  TEXT NOT NULL,
    created_at                  TIMESTAMPTZ NOT NULL,
    user_id                     BIGINT,
    key_id                      BIGINT,
    provider_id                 BIGINT,
    requested_model             TEXT,
    forwarded_model             TEXT,
    endpoint                    TEXT NOT NULL,
    client_format               TEXT NOT NULL,
    status_code                 INTEGER NOT NULL,
    is_stream                   BOOLEAN NOT NULL,
    input_tokens                BIGINT NOT NULL,
    output_tokens               BIGINT NOT NULL,
    cache_creation_5m_tokens    BIGINT NOT NULL,
    cache_creation_1h_tokens    BIGINT NOT NULL,
    cache_read_tokens           BIGINT NOT NULL,
    cost_usd                    NUMERIC(24, 12) NOT NULL,
    cost_known                  BOOLEAN NOT NULL,
    duration_ms                 BIGINT NOT NULL,
    ttfb_ms                     BIGINT,
    provider_chain              JSONB NOT NULL,
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
