//! Multi-row statements in a few fixed sizes, so their prepared statements can be cached.
//!
//! A batch of `n` rows written as one `INSERT … VALUES (…), (…)` has a different SQL text for
//! every `n`: preparing it again each batch cost about 8 % of the gateway's instructions, and
//! caching every size grew memory by hundreds of MB (one statement per size, each with
//! thousands of parameters). Cutting batches into chunks of only [`SIZES`] rows keeps the
//! number of distinct texts per statement kind at `SIZES.len()`, so the drivers' per-connection
//! statement caches (bounded at 100 entries by sqlx) hold each one once and never grow.

/// Rows per statement, largest first; each size divides the previous one, so any batch is cut
/// into at most `3` chunks of each smaller size after the largest. 256 rows of the widest
/// statement (the roll-ups, 32 columns) stay below SQLite's 32,766 bound parameters.
pub(crate) const SIZES: [usize; 5] = [256, 64, 16, 4, 1];

/// Cuts `rows` into consecutive chunks whose lengths are all in [`SIZES`] (largest first).
pub(crate) fn fixed_chunks<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = SIZES
            .iter()
            .copied()
            .find(|s| *s <= rest.len())
            .unwrap_or(1);
        let (head, tail) = rest.split_at(size);
        rest = tail;
        Some(head)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_has_a_fixed_size_and_nothing_is_lost() {
        for n in 0..700usize {
            let rows: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = fixed_chunks(&rows).collect();
            assert!(chunks.iter().all(|c| SIZES.contains(&c.len())), "n={n}");
            let joined: Vec<usize> = chunks.concat();
            assert_eq!(joined, rows, "n={n}");
        }
    }

    #[test]
    fn a_typical_batch_takes_few_statements() {
        let rows = vec![0u8; 900];
        // 3 × 256 + 2 × 64 + 1 × 4
        assert_eq!(fixed_chunks(&rows).count(), 6);
    }
}
