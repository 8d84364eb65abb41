#!/bin/sh
# Builds a SQLite file with cch's schema and 4.5 M request-log rows, 2 s apart from 2026-06-01
# (the first 4 M older than 2026-08-02T14:13:20Z), with bulk SQL. Usage: fill.sh DB
set -e
DB=${1:?usage: fill.sh DB}
HERE=$(dirname "$0")
(echo "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
 cat "$HERE/../../migrations/sqlite/0001_init.sql") | sqlite3 "$DB" >/dev/null
sqlite3 "$DB" "
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 4500000)
INSERT INTO request_logs (request_id, created_at, user_id, key_id, provider_id, requested_model,
  forwarded_model, endpoint, client_format, status_code, is_stream, input_tokens, output_tokens,
  cache_creation_5m_tokens, cache_creation_1h_tokens, cache_read_tokens, cost_usd, cost_known,
  duration_ms, ttfb_ms, provider_chain, session_id, user_agent, error_message)
SELECT 'req-' || i, strftime('%Y-%m-%dT%H:%M:%f000Z', '2026-06-01', '+' || (i * 2) || ' seconds'),
  i % 10000, i % 30000, i % 200, 'claude-sonnet-4-5', 'claude-sonnet-4-5', '/v1/messages',
  'claude', 200, 1, 1000, 200, 0, 0, 500, '0.012345', 1, 1500, 300,
  '[{\"provider_id\":1,\"outcome\":\"success\"}]', 'sess-' || (i % 50000), 'claude-cli/2.0', NULL
FROM n;"
