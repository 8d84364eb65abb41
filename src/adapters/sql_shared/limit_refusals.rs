//! The refusal count query shared by both SQL backends; only the binding of the two instants
//! differs (text in SQLite, `timestamptz` in PostgreSQL).

/// Counts 429 rows tagged `rate limited (<kind>, <scope>): …` per kind, user and key.
pub(crate) const LIMIT_REFUSALS: &str = "SELECT CASE \
     WHEN error_message LIKE 'rate limited (rpm,%' THEN 'rpm' \
     WHEN error_message LIKE 'rate limited (5h,%' THEN '5h' \
     WHEN error_message LIKE 'rate limited (daily,%' THEN 'daily' \
     WHEN error_message LIKE 'rate limited (weekly,%' THEN 'weekly' \
     WHEN error_message LIKE 'rate limited (monthly,%' THEN 'monthly' \
     WHEN error_message LIKE 'rate limited (total,%' THEN 'total' \
     WHEN error_message LIKE 'rate limited (concurrent_sessions,%' THEN 'concurrent_sessions' \
     ELSE 'other' END AS kind, user_id, key_id, COUNT(*) AS n \
     FROM request_logs \
     WHERE created_at >= $1 AND created_at < $2 AND status_code = 429 \
     AND error_message LIKE 'rate limited (%' \
     GROUP BY 1, 2, 3";

/// Turns the query's rows into domain counts.
pub(crate) fn to_counts(
    rows: Vec<(String, Option<i64>, Option<i64>, i64)>,
) -> Vec<crate::domain::rate_limit_stats::RefusalCount> {
    rows.into_iter()
        .map(
            |(kind, user_id, key_id, count)| crate::domain::rate_limit_stats::RefusalCount {
                kind,
                user_id,
                key_id,
                count,
            },
        )
        .collect()
}
