-- Notifications (issue 11): targets, the durable outbox, the delivery log. Instants are stored
-- as Unix milliseconds (BIGINT) so one query layer serves SQLite and PostgreSQL alike.
CREATE TABLE notification_targets (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    url             TEXT NOT NULL,
    secret          TEXT,
    enabled         INTEGER NOT NULL DEFAULT 1,
    events          TEXT NOT NULL DEFAULT '[]',
    lang            TEXT NOT NULL DEFAULT 'en',
    options         TEXT NOT NULL DEFAULT '{}',
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);

-- One row per (event, target). state: pending (waiting), sending (claimed until
-- lease_until_ms), delivered, failed, merged (folded into a newer pending row).
CREATE TABLE notification_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    target_id       INTEGER NOT NULL REFERENCES notification_targets(id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    coalesce_key    TEXT NOT NULL,
    notice          TEXT NOT NULL,
    repeats         INTEGER NOT NULL DEFAULT 1,
    attempts        INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL DEFAULT 'pending',
    due_at_ms       INTEGER NOT NULL,
    lease_until_ms  INTEGER,
    created_at_ms   INTEGER NOT NULL,
    finished_at_ms  INTEGER
);
CREATE UNIQUE INDEX notification_outbox_one_pending
    ON notification_outbox (target_id, coalesce_key) WHERE state = 'pending';
CREATE INDEX notification_outbox_due ON notification_outbox (state, due_at_ms);
CREATE INDEX notification_outbox_key ON notification_outbox (target_id, coalesce_key, finished_at_ms);

CREATE TABLE notification_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms           INTEGER NOT NULL,
    target_id       INTEGER NOT NULL,
    target_name     TEXT NOT NULL,
    event           TEXT NOT NULL,
    outbox_id       INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    outcome         TEXT NOT NULL,
    status          INTEGER,
    answer          TEXT NOT NULL,
    next_at_ms      INTEGER
);
CREATE INDEX notification_deliveries_target ON notification_deliveries (target_id, id);
CREATE INDEX notification_deliveries_at ON notification_deliveries (at_ms);
