-- Bulk generator for the usage-ledger benchmark on SQLite (the same distribution as
-- benches/stats_ledger.rs, written in SQL because the Rust generator, which goes through the
-- real log insert, runs at ~1,000 rows/s on a loaded 2-core machine). Run on a database
-- migrated by cch:  sqlite3 cch.db < benches/stats_sql/sqlite_generate.sql
-- Roll-ups are computed from the generated rows with the writer's grouping; the contract tests
-- (tests/rollups_contract.rs) show the writer produces exactly these sums.
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
PRAGMA temp_store = FILE;
CREATE TEMP TABLE params AS SELECT 5000000 AS n, 90 AS days, CAST(strftime('%s', 'now') AS INTEGER) AS end_s;
CREATE TEMP TABLE g AS
WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < (SELECT n FROM params) - 1),
r AS MATERIALIZED (
  SELECT i, (abs(random()) % 1000000) / 1000000.0 AS u, abs(random()) AS r1, abs(random()) AS r2,
         abs(random()) AS r3, abs(random()) AS r4, abs(random()) AS r5, abs(random()) AS r6,
         abs(random()) AS r7, abs(random()) % 1000 / 1000.0 AS frac
  FROM seq
),
a AS (
  SELECT i, r1, r2, r3, r4, r5, r6, r7,
         CAST(10000 * u * u * u AS INTEGER) + 1 AS usr,
         (i + frac) * (SELECT days FROM params) / (SELECT n FROM params) AS dayf
  FROM r
),
b AS (
  SELECT i, r1, r2, r3, r4, r5, r6, r7, usr,
         (SELECT end_s FROM params) - (SELECT days FROM params) * 86400
           + CAST((CAST(dayf AS INTEGER) + 0.25 + 0.6 * (dayf - CAST(dayf AS INTEGER))) * 86400 AS INTEGER) AS t,
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
-- Cost in pico-dollars: 3 USD/Mtok input, 15 output, 0.3 cache reads.
CREATE TEMP TABLE gc AS SELECT *, ((input * 3 + output * 15) * 1000000 + cache_read * 300000) AS pico FROM g;
INSERT INTO request_logs (request_id, created_at, user_id, key_id, provider_id, requested_model,
  forwarded_model, endpoint, client_format, status_code, is_stream, input_tokens, output_tokens,
  cache_creation_5m_tokens, cache_creation_1h_tokens, cache_read_tokens, cost_usd, cost_known,
  duration_ms, ttfb_ms, provider_chain, session_id, user_agent, error_message)
SELECT 'gen-' || i, strftime('%Y-%m-%dT%H:%M:%S.000000Z', t, 'unixepoch'), usr, key, provider,
  'model-' || model, 'model-' || model, '/v1/messages', fmt, status, 1, input, output, cw5m, 0,
  cache_read, printf('%d.%012d', pico / 1000000000000, pico % 1000000000000), 1, duration, ttfb,
  '[{"converted":false}]', 's' || sess, 'claude-cli/2.0', NULL
FROM gc ORDER BY i;
INSERT INTO usage_rollups
SELECT t / 3600 * 3600, usr, key, provider, 'model-' || model, fmt,
  CASE status WHEN 200 THEN 'success' WHEN 429 THEN 'rate_limited' WHEN 502 THEN 'server_error'
              WHEN 499 THEN 'cancelled' ELSE 'client_error' END,
  COUNT(*), SUM(status <> 200), SUM(input), SUM(output), SUM(cache_read), SUM(cw5m), 0,
  SUM(pico / 1000000), SUM(pico % 1000000), SUM(duration), COALESCE(COALESCE(SUM(ttfb), 0), 0), COUNT(ttfb),
  COALESCE(SUM(ttfb <= 100), 0), COALESCE(SUM(ttfb > 100 AND ttfb <= 250), 0), COALESCE(SUM(ttfb > 250 AND ttfb <= 500), 0),
  COALESCE(SUM(ttfb > 500 AND ttfb <= 750), 0), COALESCE(SUM(ttfb > 750 AND ttfb <= 1000), 0), COALESCE(SUM(ttfb > 1000 AND ttfb <= 1500), 0),
  COALESCE(SUM(ttfb > 1500 AND ttfb <= 2000), 0), COALESCE(SUM(ttfb > 2000 AND ttfb <= 3000), 0), COALESCE(SUM(ttfb > 3000 AND ttfb <= 5000), 0),
  COALESCE(SUM(ttfb > 5000 AND ttfb <= 10000), 0), COALESCE(SUM(ttfb > 10000 AND ttfb <= 30000), 0), COALESCE(SUM(ttfb > 30000), 0), 0
FROM gc GROUP BY 1, 2, 3, 4, 5, 6, 7;
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
ANALYZE;
SELECT (SELECT COUNT(*) FROM request_logs) AS log_rows, (SELECT COUNT(*) FROM usage_rollups) AS rollup_rows;
