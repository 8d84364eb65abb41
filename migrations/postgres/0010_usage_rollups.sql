-- Hourly roll-ups (the usage ledger): one row per (UTC hour, user, key, provider, model,
-- endpoint format, outcome class), written in the same transaction as the request-log rows it
-- sums. Log cleanup never touches it. Missing ids are 0, a missing model ''. Cost is split into
-- whole micro-dollars and the pico-dollar rest so both databases sum integers exactly. The
-- ttfb_b* columns are a time-to-first-byte histogram (bounds in domain::rollup::TTFB_BOUNDS_MS).
CREATE TABLE usage_rollups (
    hour                        BIGINT NOT NULL,
    user_id                     BIGINT NOT NULL,
    key_id                      BIGINT NOT NULL,
    provider_id                 BIGINT NOT NULL,
    model                       TEXT NOT NULL,
    endpoint_format             TEXT NOT NULL,
    outcome                     TEXT NOT NULL,
    requests                    BIGINT NOT NULL,
    errors                      BIGINT NOT NULL,
    input_tokens                BIGINT NOT NULL,
    output_tokens               BIGINT NOT NULL,
    cache_read_tokens           BIGINT NOT NULL,
    cache_write_5m_tokens       BIGINT NOT NULL,
    cache_write_1h_tokens       BIGINT NOT NULL,
    cost_micros                 BIGINT NOT NULL,
    cost_pico                   BIGINT NOT NULL,
    duration_ms                 BIGINT NOT NULL,
    ttfb_ms                     BIGINT NOT NULL,
    ttfb_count                  BIGINT NOT NULL,
    ttfb_b0 BIGINT NOT NULL, ttfb_b1 BIGINT NOT NULL, ttfb_b2 BIGINT NOT NULL,
    ttfb_b3 BIGINT NOT NULL, ttfb_b4 BIGINT NOT NULL, ttfb_b5 BIGINT NOT NULL,
    ttfb_b6 BIGINT NOT NULL, ttfb_b7 BIGINT NOT NULL, ttfb_b8 BIGINT NOT NULL,
    ttfb_b9 BIGINT NOT NULL, ttfb_b10 BIGINT NOT NULL, ttfb_b11 BIGINT NOT NULL,
    converted                   BIGINT NOT NULL,
    PRIMARY KEY (hour, user_id, key_id, provider_id, model, endpoint_format, outcome)
);
-- Per-entity reads (usage, recompute, one user's series).
CREATE INDEX usage_rollups_user_idx ON usage_rollups (user_id, hour);
CREATE INDEX usage_rollups_key_idx ON usage_rollups (key_id, hour);
CREATE INDEX usage_rollups_provider_idx ON usage_rollups (provider_id, hour);

-- Log rows that existed before roll-ups: ids in [pending_from, pending_to) are summarised into
-- roll-ups by a background pass at startup (app::rollup_backfill), a chunk per transaction.
CREATE TABLE usage_rollup_backfill (
    id                          INTEGER PRIMARY KEY CHECK (id = 1),
    pending_from                BIGINT NOT NULL,
    pending_to                  BIGINT NOT NULL
);
INSERT INTO usage_rollup_backfill (id, pending_from, pending_to)
    SELECT 1, COALESCE(MIN(id), 0), COALESCE(MAX(id) + 1, 0) FROM request_logs;
