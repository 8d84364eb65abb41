-- Period tiers of the usage ledger (domain::usage_tiers): the hourly roll-ups summed per local
-- day, week and month of one zone (usage_tier_state.zone), per user, key, provider and model.
-- Written in the log insert's transaction for hours below covered_below; the hours at and
-- above it are summed from usage_rollups by a background rebuild, which runs after this
-- migration and whenever the zone changes. Log cleanup never touches either table.
CREATE TABLE usage_tiers (
    dim                         TEXT NOT NULL,
    kind                        TEXT NOT NULL,
    start                       INTEGER NOT NULL,
    grp                         TEXT NOT NULL,
    requests                    INTEGER NOT NULL,
    errors                      INTEGER NOT NULL,
    input_tokens                INTEGER NOT NULL,
    output_tokens               INTEGER NOT NULL,
    cache_read_tokens           INTEGER NOT NULL,
    cache_write_5m_tokens       INTEGER NOT NULL,
    cache_write_1h_tokens       INTEGER NOT NULL,
    cost_micros                 INTEGER NOT NULL,
    cost_pico                   INTEGER NOT NULL,
    duration_ms                 INTEGER NOT NULL,
    ttfb_ms                     INTEGER NOT NULL,
    ttfb_count                  INTEGER NOT NULL,
    converted                   INTEGER NOT NULL,
    PRIMARY KEY (dim, kind, start, grp)
) WITHOUT ROWID;

-- The zone the tiers are cut in ('' = none yet) and the first hour not yet summed into them.
CREATE TABLE usage_tier_state (
    id                          INTEGER PRIMARY KEY CHECK (id = 1),
    zone                        TEXT NOT NULL,
    covered_below               INTEGER NOT NULL
);
INSERT INTO usage_tier_state (id, zone, covered_below) VALUES (1, '', 0);
