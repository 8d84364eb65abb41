-- Per-hour totals of the usage ledger (same sums as usage_rollups, no dimensions), written in
-- the same transaction; the statistics overview reads one row per hour from it. Filled from
-- the existing roll-ups here; never deleted by log cleanup.
CREATE TABLE usage_hourly_totals (
    hour                        INTEGER PRIMARY KEY,
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
    converted                   INTEGER NOT NULL
);
INSERT INTO usage_hourly_totals
SELECT hour, SUM(requests), SUM(errors), SUM(input_tokens), SUM(output_tokens),
    SUM(cache_read_tokens), SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens),
    SUM(cost_micros), SUM(cost_pico), SUM(duration_ms), SUM(ttfb_ms), SUM(ttfb_count),
    SUM(ttfb_b0), SUM(ttfb_b1), SUM(ttfb_b2), SUM(ttfb_b3), SUM(ttfb_b4), SUM(ttfb_b5),
    SUM(ttfb_b6), SUM(ttfb_b7), SUM(ttfb_b8), SUM(ttfb_b9), SUM(ttfb_b10), SUM(ttfb_b11),
    SUM(converted)
FROM usage_rollups GROUP BY hour;
