-- Sensitive-word filter (issue 14 item 1): admin rules checked against the text users send,
-- before routing. match_type: contains | exact | regex. Instants are Unix milliseconds so one
-- query layer (adapters/sensitive_words_sql.rs) serves SQLite and PostgreSQL.
CREATE TABLE sensitive_words (
    id              BIGSERIAL PRIMARY KEY,
    word            TEXT NOT NULL,
    match_type      TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    note            TEXT NOT NULL DEFAULT '',
    created_at_ms   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);
CREATE UNIQUE INDEX sensitive_words_rule ON sensitive_words (match_type, word);
