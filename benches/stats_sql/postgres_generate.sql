-- Bulk generator for the usage-ledger benchmark on PostgreSQL; see sqlite_generate.sql.
-- Run on a database migrated by cch:  psql "$DSN" -f benches/stats_sql/postgres_generate.sql
SET synchronous_commit = off;
CREATE TEMP TABLE g AS
WITH p AS (SELECT 5000000 AS n, 90 AS days, extract(epoch FROM now())::bigint AS end_s),
r AS MATERIALIZED (
  SELECT i, random() AS u, (random() * 1e9)::bigint AS r1, (random() * 1e9)::bigint AS r2,
         (random() * 1e9)::bigint AS r3, (random() * 1e9)::bigint AS r4, (random() * 1e9)::bigint AS r5,
         (random() * 1e9)::bigint AS r6, (random() * 1e9)::bigint AS r7, random() AS frac
  FROM generate_series(0, (SELECT n FROM p) - 1) AS i
),
a AS (
  SELECT i, r1, r2, r3, r4, r5, r6, r7, (10000 * u * u * u)::bigint + 1 AS usr,
         (i + frac) * (SELECT days FROM p) / (SELECT n FROM p) AS dayf
  FROM r
),
b AS (
  SELECT i, r1, r2, r3, r4, r5, r6, r7, usr,
         (SELECT end_s FROM p) - (SELECT days FROM p) * 86400
           + ((floor(dayf) + 0.25 + 0.6 * (dayf - floor(dayf))) * 86400)::bigint AS t,
         usr * 3 - r1 % 3 AS key,
         usr * 100 + (i / 5000) % 100 AS sess,
         CASE WHEN r3 % 1000 < 950 THEN 200 WHEN r3 % 1000 < 970 THEN 429 WHEN r3 % 1000 < 985 THEN 502
              WHEN r3 % 1000 < 995 THEN 499 ELSE 400 END AS status
  FROM a
)
SELECT i, t, usr, key, sess,
       (usr % 50) * 4 + (usr + sess) % 4 + 1 AS provider,
       CASE WHEN r2 % 10 < 7 THEN (usr * 7) % 50 ELSE (usr * 13 + 1) % 50 END + 1 AS model,
       CASE key % 10 WHEN 7 THEN 'openai' WHEN 8 THEN 'response' WHEN 9 THEN 'gemini' ELSE 'claude' END AS fmt,
       status,
       CASE WHEN status = 200 THEN 200 + r4 % 20000 ELSE 0 END AS input,
       CASE WHEN status = 200 THEN 50 + r5 % 4000 ELSE 0 END AS output,
       CASE WHEN status = 200 THEN r6 % 100000 ELSE 0 END AS cache_read,
       CASE WHEN status = 200 THEN r6 % 2000 ELSE 0 END AS cw5m,
       500 + r7 % 60000 AS duration,
       CASE WHEN status = 200 THEN 200 + r7 % 3000 END AS ttfb
FROM b;
ALTER TABLE g ADD COLUMN pico bigint;
UPDATE g SET pico = (input * 3 + output * 15) * 1000000 + cache_read * 300000;
INSERT INTO request_logs (request_id, created_at, user_id, key_id, provider_id, requested_model,
  forwarded_model, endpoint, client_format, status_code, is_stream, input_tokens, output_tokens,
  cache_creation_5m_tokens, cache_creation_1h_tokens, cache_read_tokens, cost_usd, cost_known,
  duration_ms, ttfb_ms, provider_chain, session_id, user_agent, error_message)
SELECT 'gen-' || i, to_timestamp(t), usr, key, provider, 'model-' || model, 'model-' || model,
  '/v1/messages', fmt, status, true, input, output, cw5m, 0, cache_read, pico / 1e12, true,
  duration, ttfb, '[{"converted":false}]'::jsonb, 's' || sess, 'claude-cli/2.0', NULL
FROM g ORDER BY i;
INSERT INTO usage_rollups
SELECT t / 3600 * 3600, usr, key, provider, 'model-' || model, fmt,
  CASE status WHEN 200 THEN 'success' WHEN 429 THEN 'rate_limited' WHEN 502 THEN 'server_error'
              WHEN 499 THEN 'cancelled' ELSE 'client_error' END,
  COUNT(*), COUNT(*) FILTER (WHERE status <> 200), SUM(input), SUM(output), SUM(cache_read), SUM(cw5m), 0,
  SUM(pico / 1000000), SUM(pico % 1000000), SUM(duration), COALESCE(SUM(ttfb), 0), COUNT(ttfb),
  COUNT(*) FILTER (WHERE ttfb <= 100), COUNT(*) FILTER (WHERE ttfb > 100 AND ttfb <= 250),
  COUNT(*) FILTER (WHERE ttfb > 250 AND ttfb <= 500), COUNT(*) FILTER (WHERE ttfb > 500 AND ttfb <= 750),
  COUNT(*) FILTER (WHERE ttfb > 750 AND ttfb <= 1000), COUNT(*) FILTER (WHERE ttfb > 1000 AND ttfb <= 1500),
  COUNT(*) FILTER (WHERE ttfb > 1500 AND ttfb <= 2000), COUNT(*) FILTER (WHERE ttfb > 2000 AND ttfb <= 3000),
  COUNT(*) FILTER (WHERE ttfb > 3000 AND ttfb <= 5000), COUNT(*) FILTER (WHERE ttfb > 5000 AND ttfb <= 10000),
  COUNT(*) FILTER (WHERE ttfb > 10000 AND ttfb <= 30000), COUNT(*) FILTER (WHERE ttfb > 30000), 0
FROM g GROUP BY 1, 2, 3, 4, 5, 6, 7;
INSERT INTO usage_hourly_totals
SELECT hour, SUM(requests), SUM(errors), SUM(input_tokens), SUM(output_tokens),
    SUM(cache_read_tokens), SUM(cache_write_5m_tokens), SUM(cache_write_1h_tokens),
    SUM(cost_micros), SUM(cost_pico), SUM(duration_ms), SUM(ttfb_ms), SUM(ttfb_count),
    SUM(ttfb_b0), SUM(ttfb_b1), SUM(ttfb_b2), SUM(ttfb_b3), SUM(ttfb_b4), SUM(ttfb_b5),
    SUM(ttfb_b6), SUM(ttfb_b7), SUM(ttfb_b8), SUM(ttfb_b9), SUM(ttfb_b10), SUM(ttfb_b11),
    SUM(converted)
FROM usage_rollups GROUP BY hour;
UPDATE usage_rollup_backfill SET pending_from = pending_to;
-- The period tiers are summed from the ledger by cch (the benchmark's `query` mode waits for it).
UPDATE usage_tier_state SET zone = '', covered_below = 0;
VACUUM ANALYZE request_logs;
VACUUM ANALYZE usage_rollups;
SELECT (SELECT COUNT(*) FROM request_logs) AS log_rows, (SELECT COUNT(*) FROM usage_rollups) AS rollup_rows;
