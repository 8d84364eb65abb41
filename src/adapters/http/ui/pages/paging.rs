//! Paging of the console's in-memory lists (users, providers): the query string, the cut of
//! one page and the figures the pager shows.

/// A list's query string: a filter and the 1-based page.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    /// The filter as typed.
    #[serde(default)]
    pub q: String,
    /// The page asked for (past the end: the last page).
    #[serde(default)]
    pub page: Option<usize>,
}

/// What the pager shows: 1-based positions of the first and last row shown, how many match,
/// and the neighbouring pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pager {
    /// Position of the first row shown (0 when none).
    pub first: usize,
    /// Position of the last row shown.
    pub last: usize,
    /// Rows matching the filter.
    pub total: usize,
    /// The previous page, if any.
    pub prev: Option<usize>,
    /// The next page, if any.
    pub next: Option<usize>,
}

/// The rows of page `page` (clamped to the pages there are) of `items`, `per_page` a page.
pub fn cut<T>(items: &[T], page: Option<usize>, per_page: usize) -> (&[T], Pager) {
    let total = items.len();
    let pages = total.div_ceil(per_page).max(1);
    let page_no = page.unwrap_or(1).clamp(1, pages);
    let start = ((page_no - 1) * per_page).min(total);
    let shown = &items[start..(start + per_page).min(total)];
    let pager = Pager {
        first: if shown.is_empty() { 0 } else { start + 1 },
        last: start + shown.len(),
        total,
        prev: (page_no > 1).then(|| page_no - 1),
        next: (page_no < pages).then(|| page_no + 1),
    };
    (shown, pager)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_cut_and_clamped() {
        let items: Vec<u32> = (1..=205).collect();
        let (rows, p) = cut(&items, None, 100);
        assert_eq!(
            (rows.len(), p.first, p.last, p.prev, p.next),
            (100, 1, 100, None, Some(2))
        );
        let (rows, p) = cut(&items, Some(99), 100);
        assert_eq!(
            (rows, p.first, p.last, p.prev, p.next),
            (&items[200..], 201, 205, Some(2), None)
        );
        let (rows, p) = cut::<u32>(&[], Some(0), 100);
        assert!(rows.is_empty());
        assert_eq!(
            (p.first, p.last, p.total, p.prev, p.next),
            (0, 0, 0, None, None)
        );
    }
}
