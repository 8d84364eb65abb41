//! The console's languages: one catalog per language (`i18n/<code>.txt`, `key = value` lines,
//! embedded at build time), the choice of language (cookie, then `Accept-Language`), and
//! number, money and date formatting per language.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use poem::http::HeaderMap;
use rust_decimal::Decimal;

/// Cookie remembering the picked language.
pub const LANG_COOKIE: &str = "cch_lang";

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// English (the reference catalog).
    En,
    /// Simplified Chinese.
    ZhCn,
    /// Traditional Chinese.
    ZhTw,
    /// Japanese.
    Ja,
    /// Russian.
    Ru,
}

impl Lang {
    /// Every language, English first.
    pub const ALL: [Lang; 5] = [Lang::En, Lang::ZhCn, Lang::ZhTw, Lang::Ja, Lang::Ru];

    /// The BCP 47 code (also the cookie value and `<html lang>`).
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::ZhCn => "zh-CN",
            Self::ZhTw => "zh-TW",
            Self::Ja => "ja",
            Self::Ru => "ru",
        }
    }

    /// The language's own name, for the picker.
    pub fn native_name(self) -> &'static str {
        match self {
            Self::En => "English",
            Self::ZhCn => "简体中文",
            Self::ZhTw => "繁體中文",
            Self::Ja => "日本語",
            Self::Ru => "Русский",
        }
    }

    /// Parses a code exactly as [`Lang::code`] writes it.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The closest language to one `Accept-Language` tag.
    fn from_tag(tag: &str) -> Option<Self> {
        let tag = tag.to_ascii_lowercase();
        let primary = tag.split('-').next().unwrap_or("");
        match primary {
            "en" => Some(Self::En),
            "ja" => Some(Self::Ja),
            "ru" => Some(Self::Ru),
            "zh" => {
                let traditional = ["-tw", "-hk", "-mo", "-hant"]
                    .iter()
                    .any(|s| tag.contains(s));
                Some(if traditional { Self::ZhTw } else { Self::ZhCn })
            }
            _ => None,
        }
    }

    /// The picked language: the cookie, else the best `Accept-Language` match, else English.
    pub fn negotiate(headers: &HeaderMap) -> Self {
        if let Some(l) =
            super::session::cookie_value(headers, LANG_COOKIE).and_then(Self::from_code)
        {
            return l;
        }
        let Some(accept) = headers
            .get(poem::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Self::En;
        };
        let mut tags: Vec<(f32, usize, &str)> = accept
            .split(',')
            .take(32)
            .enumerate()
            .filter_map(|(i, part)| {
                let mut it = part.split(';');
                let tag = it.next()?.trim();
                let q = it
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some((q, i, tag))
            })
            .collect();
        tags.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        tags.into_iter()
            .filter(|(q, _, _)| *q > 0.0)
            .find_map(|(_, _, tag)| Self::from_tag(tag))
            .unwrap_or(Self::En)
    }

    fn source(self) -> &'static str {
        match self {
            Self::En => include_str!("i18n/en.txt"),
            Self::ZhCn => include_str!("i18n/zh-CN.txt"),
            Self::ZhTw => include_str!("i18n/zh-TW.txt"),
            Self::Ja => include_str!("i18n/ja.txt"),
            Self::Ru => include_str!("i18n/ru.txt"),
        }
    }

    /// The language's catalog.
    pub fn catalog(self) -> &'static Catalog {
        static CATALOGS: OnceLock<HashMap<Lang, Catalog>> = OnceLock::new();
        let all = CATALOGS.get_or_init(|| {
            Self::ALL
                .into_iter()
                .map(|l| (l, Catalog::parse(l.source())))
                .collect()
        });
        // Every language is inserted above.
        &all[&self]
    }

    /// An integer with the language's digit grouping.
    pub fn int(self, n: i64) -> String {
        let sep = match self {
            Self::Ru => "\u{202f}",
            _ => ",",
        };
        group(&n.unsigned_abs().to_string(), sep, n < 0)
    }

    /// US dollars with the language's grouping and decimal mark (no conversion: costs are USD).
    pub fn money(self, d: Decimal) -> String {
        let rounded = if d.abs() < Decimal::ONE && !d.is_zero() {
            d.round_dp(4)
        } else {
            d.round_dp(2)
        };
        let s = format!("{:.*}", rounded.scale().max(2) as usize, rounded.abs());
        let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
        match self {
            Self::Ru => format!("{},{frac} $", group(int, "\u{202f}", d.is_sign_negative())),
            _ => format!("${}.{frac}", group(int, ",", d.is_sign_negative())),
        }
    }

    /// A date and time in `tz`, written the language's way.
    pub fn datetime(self, t: DateTime<Utc>, tz: Tz) -> String {
        let local = t.with_timezone(&tz);
        let pattern = match self {
            Self::En => "%b %-d, %Y %H:%M:%S",
            Self::ZhCn | Self::ZhTw | Self::Ja => "%Y年%-m月%-d日 %H:%M:%S",
            Self::Ru => "%d.%m.%Y %H:%M:%S",
        };
        local.format(pattern).to_string()
    }
}

fn group(digits: &str, sep: &str, negative: bool) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if negative {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push_str(sep);
        }
        out.push(c);
    }
    out
}

/// One language's strings by key.
pub struct Catalog {
    entries: HashMap<&'static str, &'static str>,
}

impl Catalog {
    /// Parses `key = value` lines; `#` starts a comment line.
    fn parse(src: &'static str) -> Self {
        let entries = src
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once(" = ").or_else(|| l.split_once('=')))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        Self { entries }
    }

    /// The string for `key` in this language, else in English, else the key itself (the
    /// catalog test makes the last two impossible for keys English has).
    pub fn get(&self, key: &str) -> &'static str {
        if let Some(v) = self.entries.get(key) {
            return v;
        }
        Lang::En.catalog().entries.get(key).copied().unwrap_or("?")
    }

    /// Every key, for the catalog tests.
    pub fn keys(&self) -> impl Iterator<Item = &&'static str> {
        self.entries.keys()
    }

    /// True when the key is present.
    pub fn has(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_has_every_english_key() {
        let en = Lang::En.catalog();
        assert!(en.keys().count() > 50);
        for lang in Lang::ALL {
            let missing: Vec<_> = en.keys().filter(|k| !lang.catalog().has(k)).collect();
            assert!(missing.is_empty(), "{} lacks {missing:?}", lang.code());
        }
    }

    #[test]
    fn every_key_used_in_templates_and_pages_is_in_english() {
        let en = Lang::En.catalog();
        let dirs = [
            concat!(env!("CARGO_MANIFEST_DIR"), "/templates"),
            concat!(env!("CARGO_MANIFEST_DIR"), "/src/adapters/http/ui/pages"),
        ];
        let re = regex::Regex::new(r#"\bt\("([a-z0-9_.]+)"\)"#).unwrap();
        let mut used = 0;
        for dir in dirs {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                for cap in re.captures_iter(&text) {
                    used += 1;
                    assert!(
                        en.has(&cap[1]),
                        "{} uses unknown key {}",
                        path.display(),
                        &cap[1]
                    );
                }
            }
        }
        assert!(used > 50, "only {used} keys found: is the pattern right?");
    }

    #[test]
    fn accept_language_picks_by_quality() {
        let mut h = HeaderMap::new();
        h.insert(
            "accept-language",
            "fr;q=1, zh-TW;q=0.8, en;q=0.5".parse().unwrap(),
        );
        assert_eq!(Lang::negotiate(&h), Lang::ZhTw);
        h.insert("accept-language", "zh-Hans-CN, ja;q=0.9".parse().unwrap());
        assert_eq!(Lang::negotiate(&h), Lang::ZhCn);
        h.insert("cookie", "cch_lang=ru".parse().unwrap());
        assert_eq!(Lang::negotiate(&h), Lang::Ru);
        assert_eq!(Lang::negotiate(&HeaderMap::new()), Lang::En);
    }

    #[test]
    fn numbers_and_money() {
        assert_eq!(Lang::En.int(1234567), "1,234,567");
        assert_eq!(Lang::Ru.int(-1234), "-1\u{202f}234");
        assert_eq!(Lang::En.money(Decimal::new(123456, 2)), "$1,234.56");
        assert_eq!(Lang::En.money(Decimal::new(12, 4)), "$0.0012");
        assert_eq!(Lang::Ru.money(Decimal::new(150, 2)), "1,50 $");
    }
}
