-- Scheduled jobs and cluster-wide locks (`app/scheduler.rs`, `app/retention.rs`).
-- One row per (job, run): a daily run is keyed by its local date (`2026-12-04`), a lock by a
-- fixed name. A row is claimed by one instance until `lease_until_ms`; a finished run is never
-- claimed again. Times are Unix milliseconds, so SQLite and PostgreSQL share every query
-- (`adapters/sql_shared/job_leases.rs`). Finished rows older than 90 days are pruned.
CREATE TABLE job_leases (
    job                         TEXT NOT NULL,
    run_key                     TEXT NOT NULL,
    holder                      TEXT NOT NULL,
    lease_until_ms              BIGINT NOT NULL,
    claimed_at_ms               BIGINT NOT NULL,
    finished_at_ms              BIGINT,
    outcome                     TEXT,
    PRIMARY KEY (job, run_key)
);
