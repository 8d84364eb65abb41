-- Admin audit log (issue 14 item 3): one row per admin write. changes is a JSON list of
-- {field, old, new} with secrets masked. Instants are Unix milliseconds so one query layer
-- (adapters/audit_sql.rs) serves SQLite and PostgreSQL.
CREATE TABLE audit_logs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    ip          TEXT,
    action      TEXT NOT NULL,
    route       TEXT NOT NULL,
    target      TEXT NOT NULL,
    status      INTEGER NOT NULL,
    changes     TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX audit_logs_at ON audit_logs (at_ms);
