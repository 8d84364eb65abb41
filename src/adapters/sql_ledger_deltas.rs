//! SQLite's usage-ledger deltas: the log writer appends each batch's roll-ups to
//! [`DELTAS`] (see `sql_ledger::sqlite_writes` for why), and [`merge`] moves them into
//! `usage_rollups` when [`MergePace`] says so and before each tier fold step. Readers read the
//! `usage_ledger` view (`sql_ledger::LEDGER`), both tables, so a merge changes no answer.

use super::sql_ledger::{Dialect, KEY_COLUMNS, Sql, add_on_conflict, sum_columns};

/// Where SQLite's log writer appends each batch's roll-ups.
pub(crate) const DELTAS: &str = "usage_rollup_deltas";

/// The statements that move every delta row into `usage_rollups` (summed per key, in key
/// order, added to the key's row), to run in one transaction: SQLite's write lock keeps
/// other writers out between the two, so a reader of `usage_ledger` sees each row once. Postgres
/// has no delta rows: none.
pub(crate) fn merge(dialect: Dialect) -> Vec<Sql> {
    if dialect == Dialect::Postgres {
        return Vec::new();
    }
    let sums = sum_columns(true);
    let keys = KEY_COLUMNS.join(", ");
    let summed: Vec<String> = sums.iter().map(|c| format!("SUM({c})")).collect();
    let mut insert = Sql::new(dialect);
    insert
        .push("INSERT INTO usage_rollups (")
        .push(&keys)
        .push(", ")
        .push(&sums.join(", "))
        .push(") SELECT ")
        .push(&keys)
        .push(", ")
        .push(&summed.join(", "))
        .push(" FROM ")
        .push(DELTAS)
        // SQLite needs a `WHERE` before an upsert's `ON CONFLICT` after a `SELECT`.
        .push(" WHERE 1 = 1 GROUP BY ")
        .push(&keys)
        .push(" ORDER BY ")
        .push(&keys);
    add_on_conflict(&mut insert, "usage_rollups", &keys, &sums);
    let mut delete = Sql::new(dialect);
    delete.push("DELETE FROM ").push(DELTAS);
    vec![insert, delete]
}

/// When SQLite's log writer merges the delta rows ([`merge`]): once [`MergePace::ROWS`] delta
/// rows were appended since the last merge, or after [`MergePace::EVERY`]. That bounds the
/// delta table (what a read of the unfolded hours scans besides their merged rows) at about
/// `ROWS` rows. Merging less often is cheaper when a merge meets many keys of the hour (the
/// writer benchmark: 10,000 users; a merge every 2 s cost as much as updating every batch),
/// and costs little when traffic repeats a few keys. A failed merge is retried at the next
/// batch that is due.
#[derive(Debug)]
pub(crate) struct MergePace {
    /// The last merge (or the start) and the delta rows appended since.
    state: std::sync::Mutex<(std::time::Instant, usize)>,
}

impl Default for MergePace {
    fn default() -> Self {
        Self {
            state: std::sync::Mutex::new((std::time::Instant::now(), 0)),
        }
    }
}

impl MergePace {
    /// Longest time between merges while batches arrive.
    pub(crate) const EVERY: std::time::Duration = std::time::Duration::from_secs(60);
    /// Delta rows after which a merge is due whatever the time.
    pub(crate) const ROWS: usize = 32_768;

    /// Records `appended` delta rows; true when a merge is due (the pace then restarts).
    pub(crate) fn due(&self, appended: usize) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return true;
        };
        s.1 += appended;
        if s.1 >= Self::ROWS || s.0.elapsed() >= Self::EVERY {
            *s = (std::time::Instant::now(), 0);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sql_ledger::tests::rows;
    use crate::adapters::sql_ledger::{postgres_batch_write, sqlite_writes};

    #[test]
    fn sqlite_appends_to_the_deltas_and_a_merge_moves_them() {
        let lite = sqlite_writes(&rows(3));
        assert!(
            lite[0]
                .text
                .starts_with("INSERT INTO usage_rollup_deltas (")
        );
        assert!(!lite[0].text.contains("ON CONFLICT"));
        let pg = postgres_batch_write(&rows(3)).text;
        assert!(pg.starts_with("WITH ledger AS (INSERT INTO usage_rollups ("));
        assert!(pg.contains("ON CONFLICT (hour, user_id, key_id"));
        assert!(pg.contains("), hourly AS (INSERT INTO usage_hourly_totals ("));
        assert!(pg.ends_with("FROM usage_tier_state WHERE id = 1 FOR SHARE"));

        assert!(merge(Dialect::Postgres).is_empty());
        let m = merge(Dialect::Sqlite);
        assert_eq!(m.len(), 2);
        assert!(m[0].text.starts_with("INSERT INTO usage_rollups ("));
        assert!(
            m[0].text
                .contains(" FROM usage_rollup_deltas WHERE 1 = 1 GROUP BY hour, user_id")
        );
        assert!(m[0].text.contains("ON CONFLICT (hour, user_id, key_id"));
        assert_eq!(m[1].text, "DELETE FROM usage_rollup_deltas");
    }

    #[test]
    fn a_merge_is_due_after_enough_rows() {
        let pace = MergePace::default();
        assert!(!pace.due(MergePace::ROWS - 1));
        assert!(pace.due(1));
        // The count restarts after a merge.
        assert!(!pace.due(MergePace::ROWS - 1));
    }
}
