-- Per-hour totals of the usage ledger (same sums as usage_rollups, no dimensions), written in
-- the same transaction; the statistics overview reads one row per hour from it. Filled from
-- the existing roll-ups here; never deleted by log cleanup.
CREATE TABLE usage_hourly_totals (
    hour                        BIGINT PRIMARY KEY,
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
    converted                   BIGINT NOT NULL
);
INSERT INTO usage_hourly_totals
SELECT hour, SUM(requests), SUM(errors), SUM(input_tokens), SUM(output_tokens),
    SUM(cache_read_tokens), SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens),
    SUM(cost_micros), SUM(cost_pico), SUM(duration_ms), SUM(ttfb_ms), SUM(ttfb_count),
    SUM(ttfb_b0), SUM(ttfb_b1), SUM(ttfb_b2), SUM(ttfb_b3), SUM(ttfb_b4), SUM(ttfb_b5),
    SUM(ttfb_b6), SUM(ttfb_b7), SUM(ttfb_b8), SUM(ttfb_b9), SUM(ttfb_b10), SUM(ttfb_b11),
    SUM(converted)
FROM usage_rollups GROUP BY hour;
