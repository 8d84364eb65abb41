//! A filter field that names one user or provider by typing, instead of a `<select>` of all of
//! them: with 10,000 users the select alone made the Logs and Sessions pages ~450 KB. The field
//! takes a name (exact, else the one name equal ignoring case) or `#id`; a link may still pass
//! the id (`user_id=…`), and the field then shows the name. Small lists (at most
//! [`SUGGEST_MAX`] names) come with a `<datalist>` of every name, so the browser suggests them.

/// The most names offered as suggestions; above it the field is plain text (the page stays the
/// same size however many users there are).
pub const SUGGEST_MAX: usize = 200;

/// What a name field resolved to, for the query and for the form.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NamePick {
    /// The field's text as shown again (the typed text, or the name of the linked id).
    pub text: String,
    /// The id to filter by.
    pub id: Option<i64>,
    /// The text named nothing: the page shows an error and no rows.
    pub unknown: bool,
    /// Every name, sorted, when there are at most [`SUGGEST_MAX`]; otherwise empty.
    pub suggestions: Vec<String>,
}

/// Resolves the typed `text` (wins when not blank) or the linked `id` against `names`
/// (id, name).
pub fn pick<'a>(
    text: &str,
    id: &str,
    names: impl ExactSizeIterator<Item = (i64, &'a str)>,
) -> NamePick {
    let names: Vec<(i64, &str)> = names.collect();
    let suggestions = if names.len() <= SUGGEST_MAX {
        let mut v: Vec<String> = names.iter().map(|(_, n)| (*n).to_owned()).collect();
        v.sort();
        v.dedup();
        v
    } else {
        Vec::new()
    };
    let text = text.trim();
    if text.is_empty() {
        let id = id.trim().parse::<i64>().ok();
        let text = id
            .map(|i| {
                names
                    .iter()
                    .find(|(n, _)| *n == i)
                    .map_or_else(|| format!("#{i}"), |(_, name)| (*name).to_owned())
            })
            .unwrap_or_default();
        return NamePick {
            text,
            id,
            unknown: false,
            suggestions,
        };
    }
    let by_id = text
        .strip_prefix('#')
        .and_then(|n| n.trim().parse::<i64>().ok());
    let found = by_id.or_else(|| {
        names
            .iter()
            .find(|(_, n)| *n == text)
            .or_else(|| {
                let lower = text.to_lowercase();
                let mut same = names.iter().filter(|(_, n)| n.to_lowercase() == lower);
                match (same.next(), same.next()) {
                    (Some(one), None) => Some(one),
                    _ => None,
                }
            })
            .map(|(i, _)| *i)
    });
    NamePick {
        text: text.to_owned(),
        id: found,
        unknown: found.is_none(),
        suggestions,
    }
}

/// The user and the provider of a filter form, each typed (`*_text`) or linked (`*_id`),
/// resolved against the configuration snapshot.
pub fn user_and_provider(
    snap: &crate::app::snapshot::ConfigSnapshot,
    (user_text, user_id): (&str, &str),
    (provider_text, provider_id): (&str, &str),
) -> (NamePick, NamePick) {
    let user = pick(
        user_text,
        user_id,
        snap.users.values().map(|u| (u.id, u.name.as_str())),
    );
    let provider = pick(
        provider_text,
        provider_id,
        snap.providers.iter().map(|p| (p.id, p.name.as_str())),
    );
    (user, provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<(i64, &'static str)> {
        vec![(1, "alice"), (2, "Bob"), (3, "bob"), (4, "Émile")]
    }

    #[test]
    fn a_typed_name_resolves_exactly_then_ignoring_case_when_unique() {
        let p = pick("alice", "", names().into_iter());
        assert_eq!(
            (p.id, p.unknown, p.text.as_str()),
            (Some(1), false, "alice")
        );
        assert_eq!(pick("ALICE", "", names().into_iter()).id, Some(1));
        assert_eq!(pick("émile", "", names().into_iter()).id, Some(4));
        assert_eq!(
            pick("bob", "", names().into_iter()).id,
            Some(3),
            "exact wins"
        );
        let p = pick("BOB", "", names().into_iter());
        assert!(p.unknown && p.id.is_none(), "two names equal ignoring case");
        assert!(pick("carol", "", names().into_iter()).unknown);
    }

    #[test]
    fn ids_come_typed_with_a_hash_or_from_a_link() {
        assert_eq!(pick(" #2 ", "", names().into_iter()).id, Some(2));
        let linked = pick("", "3", names().into_iter());
        assert_eq!((linked.id, linked.text.as_str()), (Some(3), "bob"));
        let gone = pick("", "99", names().into_iter());
        assert_eq!(
            (gone.id, gone.text.as_str(), gone.unknown),
            (Some(99), "#99", false)
        );
        assert_eq!(
            pick("", "x", names().into_iter()),
            NamePick {
                suggestions: vec!["Bob".into(), "alice".into(), "bob".into(), "Émile".into()],
                ..Default::default()
            }
        );
        assert_eq!(
            pick("Bob", "3", names().into_iter()).id,
            Some(2),
            "the typed text wins"
        );
    }

    #[test]
    fn suggestions_stop_at_the_cap() {
        let many: Vec<(i64, String)> = (0..=SUGGEST_MAX as i64)
            .map(|i| (i, format!("u{i}")))
            .collect();
        let p = pick("u7", "", many.iter().map(|(i, n)| (*i, n.as_str())));
        assert_eq!(p.id, Some(7));
        assert!(p.suggestions.is_empty());
        let few = &many[..SUGGEST_MAX];
        assert_eq!(
            pick("", "", few.iter().map(|(i, n)| (*i, n.as_str())))
                .suggestions
                .len(),
            SUGGEST_MAX
        );
    }
}
