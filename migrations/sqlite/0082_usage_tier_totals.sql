-- All-time totals in the period tiers (kind 't', start 0, one row per group): an all-time
-- leaderboard read one row per user and month of the ledger's life (100,000 rows and 0.2 s
-- for 10,000 users over three months); now one per user. The fold and the log insert keep
-- them from here on; this sums the hours already folded, which the day rows hold exactly
-- (every folded hour is in one day).
INSERT INTO usage_tiers (dim, kind, start, grp, requests, errors, input_tokens, output_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cost_micros, cost_pico, duration_ms, ttfb_ms, ttfb_count, converted)
SELECT dim, 't', 0, grp, CAST(SUM(requests) AS BIGINT), CAST(SUM(errors) AS BIGINT), CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT), CAST(SUM(cache_read_tokens) AS BIGINT), CAST(SUM(cache_write_5m_tokens) AS BIGINT), CAST(SUM(cache_write_1h_tokens) AS BIGINT), CAST(SUM(cost_micros) AS BIGINT), CAST(SUM(cost_pico) AS BIGINT), CAST(SUM(duration_ms) AS BIGINT), CAST(SUM(ttfb_ms) AS BIGINT), CAST(SUM(ttfb_count) AS BIGINT), CAST(SUM(converted) AS BIGINT)
FROM usage_tiers
WHERE kind = 'd'
GROUP BY dim, grp
ORDER BY dim, grp;
