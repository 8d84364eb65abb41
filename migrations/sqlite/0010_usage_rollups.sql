-- Hourly roll-ups (the usage ledger): one row per (UTC hour, user, key, provider, model,
-- endpoint format, outcome class), written in the same transaction as the request-log rows it
-- sums. Log cleanup never touches it. Missing ids are 0, a missing model ''. Cost is split into
-- whole micro-dollars and the pico-dollar rest so both databases sum integers exactly. The
-- ttfb_b* columns are a time-to-first-byte histogram (bounds in domain::rollup::TTFB_BOUNDS_MS).
CREATE TABLE usage_rollups (
    hour                        INTEGER NOT NULL,
    user_id                     INTEGER NOT NULL,
    key_id                      INTEGER NOT NULL,
    provider_id                 INTEGER NOT NULL,
    model                       TEXT NOT NULL,
    endpoint_format             TEXT NOT NULL,
    outcome                     TEXT NOT NULL,
    requests                    INTEGER NOT NULL,
    errors                      INTEGER NOT NULL,
    input_tokens                INTEGER NOT NULL,
    output_tokens               INTEGER NOT NULL,
    cache_read_tokens           INTEGER NOT NULL,
    cache_write_5m_tokens       INTEGER NOT NULL,
    cache_write_1h_tokens       INTEGER NOT NULL,
    cost_micros                 INTEGER NOT NULL,
    cost_pico                   INTEGER NOT NULL,
    duration_ms                 INTEGER NOT NULL,
    ttfb_ms                     INTEGER NOT NULL,
    ttfb_count                  INTEGER NOT NULL,
    ttfb_b0 INTEGER NOT NULL, ttfb_b1 INTEGER NOT NULL, ttfb_b2 INTEGER NOT NULL,
    ttfb_b3 INTEGER NOT NULL, ttfb_b4 INTEGER NOT NULL, ttfb_b5 INTEGER NOT NULL,
    ttfb_b6 INTEGER NOT NULL, ttfb_b7 INTEGER NOT NULL, ttfb_b8 INTEGER NOT NULL,
    ttfb_b9 INTEGER NOT NULL, ttfb_b10 INTEGER NOT NULL, ttfb_b11 INTEGER NOT NULL,
    converted                   INTEGER NOT NULL,
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
    pending_from                INTEGER NOT NULL,
    pending_to                  INTEGER NOT NULL
);
INSERT INTO usage_rollup_backfill (id, pending_from, pending_to)
    SELECT 1, COALESCE(MIN(id), 0), COALESCE(MAX(id) + 1, 0) FROM request_logs;
