-- What every reader of the usage ledger reads (the SQL is shared with SQLite, whose log
-- writer appends roll-ups to a delta table merged later; see the SQLite migration of this
-- number). PostgreSQL keeps updating usage_rollups in the log batch's transaction: its WAL
-- logs changed rows, not pages, so an update costs its record wherever the row is, and
-- appending then merging measured no cheaper there.
CREATE VIEW usage_ledger AS SELECT * FROM usage_rollups;
