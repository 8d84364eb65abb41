-- The log writer appends each batch's roll-ups to usage_rollup_deltas (new rows land on the
-- table's last pages; its hour index grows at its end) instead of updating usage_rollups row
-- by row. An update dirtied a random page of the hour's ledger rows per key and batch, and
-- SQLite writes every dirty page to its WAL at commit: the roll-ups added about 11 % to the
-- log writer's cost. After enough delta rows or time, and before each tier fold step, the
-- rows are summed into usage_rollups and deleted in one transaction. Readers read the view
-- usage_ledger, so a row counts exactly once whether it is still a delta or already merged.
CREATE TABLE usage_rollup_deltas (
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
    converted INTEGER NOT NULL
);
CREATE INDEX usage_rollup_deltas_hour_idx ON usage_rollup_deltas (hour);

CREATE VIEW usage_ledger AS
    SELECT * FROM usage_rollups
    UNION ALL
    SELECT * FROM usage_rollup_deltas;
