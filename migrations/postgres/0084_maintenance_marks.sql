-- Changes cch makes to the database's own settings for a while and must undo, one row each:
-- e.g. autovacuum held off request_logs while a log cleanup deletes. The row outlives a crash
-- of the process that made the change, so the next cleanup or the next start undoes it.
CREATE TABLE maintenance_marks (
    name                        TEXT PRIMARY KEY,
    set_at_ms                   BIGINT NOT NULL
);
