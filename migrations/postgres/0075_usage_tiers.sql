-- Period tiers of the usage ledger (domain::usage_tiers): the hourly roll-ups summed per local
-- day, week and month of one zone (usage_tier_state.zone), per user, key, provider and model.
-- Written in the log insert's transaction for hours below covered_below; the hours at and
-- above it are summed from usage_rollups by a background rebuild, which runs after this
-- migration and whenever the zone changes. Log cleanup never touches either table.
CREATE TABLE usage_tiers (
    dim                         TEXT NOT NULL,
    kind                        TEXT NOT NULL,
    start                       BIGINT NOT NULL,
    grp                         TEXT NOT NULL,
    requests                    BIGINT NOT NULL,
    errors                      BIGINT NOT NULL,
    input_tokens                BIGINT NOT NULL,
    output_tokens               BIGINT NOT NULL,
    cache_read_tokens           BIGINT NOT NULL,
    cache_write_5m_tokens       BIGINT NOT NULL,
    cache_write_1h_tokens       BIGINT NOT NULL,
    cost_micros                 BIGINT NOT NULL,
    cost_pico                   BIGINT NOT NULL,
    duration_ms                 BIGINT NOT NULL,
    ttfb_ms                     BIGINT NOT NULL,
    ttfb_count                  BIGINT NOT NULL,
    converted                   BIGINT NOT NULL,
    PRIMARY KEY (dim, kind, start, grp)
);

-- The zone the tiers are cut in ('' = none yet) and the first hour not yet summed into them.
CREATE TABLE usage_tier_state (
    id                          INTEGER PRIMARY KEY CHECK (id = 1),
    zone                        TEXT NOT NULL,
    covered_below               BIGINT NOT NULL
);
INSERT INTO usage_tier_state (id, zone, covered_below) VALUES (1, '', 0);
