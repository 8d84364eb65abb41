-- The ledger keeps only its hour-ordered key: its per-entity indexes cost the log writer a
-- random index page per row each (the roll-ups added about 70 % to the writer's cost). One
-- entity's figures (usage of a window without a limit, a one-entity recompute) read the
-- period tiers instead, which now keep UTC hours for users and keys too (written by the
-- background fold, not the writer) and are looked up by group.
DROP INDEX usage_rollups_user_idx;
DROP INDEX usage_rollups_key_idx;
DROP INDEX usage_rollups_provider_idx;
CREATE INDEX usage_tiers_group_idx ON usage_tiers (dim, kind, grp, start);
-- Any hourly user or key rows are summed again from the ledger below.
DELETE FROM usage_tiers WHERE kind = 'h' AND dim IN ('user', 'key');

-- The users' hours already folded (the tiers hold exactly the hours before covered_below),
-- written hour by hour so that Postgres keeps an hour's rows on adjacent pages.
INSERT INTO usage_tiers (dim, kind, start, grp, requests, errors, input_tokens, output_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cost_micros, cost_pico, duration_ms, ttfb_ms, ttfb_count, converted)
SELECT 'user', 'h', hour, CAST(user_id AS TEXT), CAST(SUM(requests) AS BIGINT), CAST(SUM(errors) AS BIGINT), CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT), CAST(SUM(cache_read_tokens) AS BIGINT), CAST(SUM(cache_write_5m_tokens) AS BIGINT), CAST(SUM(cache_write_1h_tokens) AS BIGINT), CAST(SUM(cost_micros) AS BIGINT), CAST(SUM(cost_pico) AS BIGINT), CAST(SUM(duration_ms) AS BIGINT), CAST(SUM(ttfb_ms) AS BIGINT), CAST(SUM(ttfb_count) AS BIGINT), CAST(SUM(converted) AS BIGINT)
FROM usage_rollups
WHERE hour < (SELECT covered_below FROM usage_tier_state WHERE id = 1)
  AND (SELECT zone FROM usage_tier_state WHERE id = 1) <> ''
GROUP BY hour, user_id
ORDER BY hour;

-- The keys' hours already folded (the tiers hold exactly the hours before covered_below).
INSERT INTO usage_tiers (dim, kind, start, grp, requests, errors, input_tokens, output_tokens, cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cost_micros, cost_pico, duration_ms, ttfb_ms, ttfb_count, converted)
SELECT 'key', 'h', hour, CAST(key_id AS TEXT), CAST(SUM(requests) AS BIGINT), CAST(SUM(errors) AS BIGINT), CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT), CAST(SUM(cache_read_tokens) AS BIGINT), CAST(SUM(cache_write_5m_tokens) AS BIGINT), CAST(SUM(cache_write_1h_tokens) AS BIGINT), CAST(SUM(cost_micros) AS BIGINT), CAST(SUM(cost_pico) AS BIGINT), CAST(SUM(duration_ms) AS BIGINT), CAST(SUM(ttfb_ms) AS BIGINT), CAST(SUM(ttfb_count) AS BIGINT), CAST(SUM(converted) AS BIGINT)
FROM usage_rollups
WHERE hour < (SELECT covered_below FROM usage_tier_state WHERE id = 1)
  AND (SELECT zone FROM usage_tier_state WHERE id = 1) <> ''
GROUP BY hour, key_id
ORDER BY hour;
