#!/bin/sh
# Builds a PostgreSQL database with cch's schema and 5 M request-log rows, 2 s apart from
# 2026-06-01 (the first 4 M older than 2026-09-01T14:13:20Z), for the cleanup-under-load
# benchmark. Usage: fill_postgres.sh CCH_BINARY DATABASE_NAME [SERVER_URL]
#   then, e.g.:
#   cch-soak soak --cch CCH_BINARY --rate 500 --duration 16m --connections 16 --stream-pct 0 \
#     --no-faults --no-rejecting-user --env DSN=SERVER_URL/DATABASE_NAME \
#     --admin-post "180s:/api/v1/logs/cleanup?before=2026-09-01T14:13:20Z"
# and read the last line of summary.txt: the median added p99 of the samples before the
# cleanup, while it ran and after it. The database is left
# behind; use it as a template (CREATE DATABASE x TEMPLATE name) to repeat a run.
set -e
CCH=${1:?usage: fill_postgres.sh CCH_BINARY DATABASE_NAME [SERVER_URL]}
DB=${2:?usage: fill_postgres.sh CCH_BINARY DATABASE_NAME [SERVER_URL]}
SERVER=${3:-postgres://postgres@127.0.0.1:5432}
psql "$SERVER/postgres" -c "CREATE DATABASE $DB"
DSN="$SERVER/$DB" ADMIN_TOKEN=fill-only-not-served "$CCH" migrate
psql "$SERVER/$DB" -c "SET synchronous_commit = off" -c "
INSERT INTO request_logs (request_id, created_at, user_id, key_id, provider_id, requested_model,
  forwarded_model, endpoint, client_format, status_code, is_stream, input_tokens, output_tokens,
  cache_creation_5m_tokens, cache_creation_1h_tokens, cache_read_tokens, cost_usd, cost_known,
  duration_ms, ttfb_ms, provider_chain, session_id, user_agent, error_message)
SELECT 'req-' || i, timestamptz '2026-06-01 00:00:00+00' + make_interval(secs => i * 2),
  i % 10000, i % 30000, i % 200, 'claude-sonnet-4-5', 'claude-sonnet-4-5', '/v1/messages',
  'claude', 200, true, 1000, 200, 0, 0, 500, 0.012345, true, 1500, 300,
  '[{\"provider_id\":1,\"outcome\":\"success\"}]', 'sess-' || (i % 50000), 'claude-cli/2.0', NULL
FROM generate_series(1, 5000000) AS i" -c "VACUUM ANALYZE request_logs"
