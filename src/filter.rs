//! Which events a user wants: `--wiki`, `--type`, `--domain`, `--no-bots`/`--bots-only`,
//! `--namespace`, `--match`/`--invert-match`, and (for reading archives) `--from`/`--to`.
//!
//! Pure: a `Filter` looks at an event's data line and the fields `event::inspect` read from it,
//! and says keep, or why not. Flags combine with AND, the values of one flag with OR. `set` reads
//! one filter's value by its name, for the flags (`--wiki`) and `serve`'s query (`?wiki=`)
//! alike; it does not count anything (that is the caller's `Stats`).

use crate::event::Meta;
use crate::labels::label_set;
use crate::times;

label_set! {
    /// Why a filter left an event out; the label of the filtered metric.
    pub enum Reason {
        Wiki => "wiki",
        Type => "type",
        Domain => "domain",
        Bot => "bot",
        Namespace => "namespace",
        Match => "match",
        Time => "time",
    }
}

/// Which bots to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bots {
    /// `--no-bots`: events with `bot: true` are left out; events without the flag are kept.
    Exclude,
    /// `--bots-only`: only events with `bot: true` are kept.
    Only,
}

/// The filters of one command line; the default keeps everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub wikis: Vec<String>,
    pub types: Vec<String>,
    /// A domain matches itself and its subdomains: `wikipedia.org` keeps `en.wikipedia.org`.
    pub domains: Vec<String>,
    pub bots: Option<Bots>,
    pub namespaces: Vec<i64>,
    /// Searched in the raw data line.
    pub pattern: Option<regex_lite::Regex>,
    pub invert_match: bool,
    /// Inclusive lower bound on `meta.dt`, in milliseconds since the epoch.
    pub from_ms: Option<i64>,
    /// Exclusive upper bound on `meta.dt`.
    pub to_ms: Option<i64>,
}

/// The filters that take a value, by the name that the flags (`--wiki`) and `serve`'s query
/// parameters (`wiki=`) share.
pub const VALUE_FILTERS: [&str; 5] = ["wiki", "type", "domain", "namespace", "match"];

impl Filter {
    /// Sets the filter `name` (one of `VALUE_FILTERS`) from its text: a comma-separated list
    /// of at least one value, numbers for `namespace`, a regular expression for `match`. The
    /// error says what is wrong with the value; the caller names the flag or parameter.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let list = || -> Result<Vec<String>, String> {
            let values: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            match values.is_empty() {
                true => Err("needs at least one value".into()),
                false => Ok(values),
            }
        };
        match name {
            "wiki" => self.wikis = list()?,
            "type" => self.types = list()?,
            "domain" => self.domains = list()?,
            "namespace" => {
                self.namespaces = list()?
                    .iter()
                    .map(|n| {
                        n.parse::<i64>()
                            .map_err(|_| format!("'{n}' (comma-separated numbers)"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "match" if value.is_empty() => return Err("the pattern is empty".into()),
            "match" => {
                let regex = regex_lite::Regex::new(value).map_err(|e| format!("'{value}': {e}"))?;
                self.pattern = Some(regex);
            }
            _ => return Err(format!("no filter is named {name}")),
        }
        Ok(())
    }

    /// True when no filter is set: every event is kept.
    pub fn is_empty(&self) -> bool {
        self.wikis.is_empty()
            && self.types.is_empty()
            && self.domains.is_empty()
            && self.bots.is_none()
            && self.namespaces.is_empty()
            && self.pattern.is_none()
            && self.from_ms.is_none()
            && self.to_ms.is_none()
    }

    /// Keeps the event whose data line is `data` and whose fields are `meta`, or says which
    /// filter left it out. Missing fields do not match a list (`--wiki` leaves out an event
    /// without `wiki`), and an event without a time is outside any `--from`/`--to` range.
    pub fn check(&self, data: &str, meta: &Meta<'_>) -> Result<(), Reason> {
        if !self.wikis.is_empty() && !listed(&self.wikis, meta.wiki.as_deref()) {
            return Err(Reason::Wiki);
        }
        if !self.types.is_empty() && !listed(&self.types, meta.kind.as_deref()) {
            return Err(Reason::Type);
        }
        if !self.domains.is_empty() && !meta.domain.as_deref().is_some_and(|d| self.domain_ok(d)) {
            return Err(Reason::Domain);
        }
        let is_bot = meta.bot == Some(true);
        match self.bots {
            Some(Bots::Exclude) if is_bot => return Err(Reason::Bot),
            Some(Bots::Only) if !is_bot => return Err(Reason::Bot),
            _ => {}
        }
        if !self.namespaces.is_empty()
            && !meta.namespace.is_some_and(|n| self.namespaces.contains(&n))
        {
            return Err(Reason::Namespace);
        }
        if let Some(pattern) = &self.pattern
            && pattern.is_match(data) == self.invert_match
        {
            return Err(Reason::Match);
        }
        if self.from_ms.is_some() || self.to_ms.is_some() {
            let dt = meta.dt.as_deref().and_then(times::parse_rfc3339_ms);
            let inside = dt.is_some_and(|dt| {
                self.from_ms.is_none_or(|from| dt >= from) && self.to_ms.is_none_or(|to| dt < to)
            });
            if !inside {
                return Err(Reason::Time);
            }
        }
        Ok(())
    }

    fn domain_ok(&self, domain: &str) -> bool {
        self.domains.iter().any(|wanted| {
            domain == wanted
                || domain
                    .strip_suffix(wanted.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        })
    }
}

fn listed(values: &[String], value: Option<&str>) -> bool {
    value.is_some_and(|v| values.iter().any(|wanted| wanted == v))
}

#[cfg(test)]
mod tests {
    #[test]
    fn set_reads_each_value_filter_by_its_name() {
        let mut filter = Filter::default();
        filter.set("wiki", " enwiki, dewiki,").unwrap();
        filter.set("namespace", "0,14").unwrap();
        filter.set("match", "Talk:").unwrap();
        assert_eq!(filter.wikis, ["enwiki", "dewiki"]);
        assert_eq!(filter.namespaces, [0, 14]);
        assert!(filter.pattern.is_some());
        assert_eq!(
            filter.set("type", " , "),
            Err("needs at least one value".into())
        );
        assert_eq!(
            filter.set("namespace", "x"),
            Err("'x' (comma-separated numbers)".into())
        );
        assert_eq!(filter.set("match", ""), Err("the pattern is empty".into()));
        assert!(filter.set("match", "(").is_err());
        assert!(filter.set("bots", "true").is_err());
        for name in VALUE_FILTERS {
            assert!(Filter::default().set(name, "1").is_ok(), "{name}");
        }
    }

    use super::*;

    const EDIT: &str = r#"{"type":"edit","wiki":"enwiki","bot":false,"namespace":0,"title":"Zebra","meta":{"domain":"en.wikipedia.org","dt":"2024-11-23T09:00:00Z"}}"#;
    const BOT_LOG: &str = r#"{"type":"log","wiki":"dewiki","bot":true,"namespace":14,"meta":{"domain":"de.wikipedia.org","dt":"2024-11-23T10:00:00Z"}}"#;
    const BARE: &str = r#"{"meta":{}}"#;

    fn check(filter: &Filter, data: &str) -> Result<(), Reason> {
        filter.check(data, &crate::event::inspect(data).expect("valid"))
    }

    #[test]
    fn empty_filter_keeps_everything() {
        let filter = Filter::default();
        assert!(filter.is_empty());
        for data in [EDIT, BOT_LOG, BARE] {
            assert_eq!(check(&filter, data), Ok(()));
        }
    }

    #[test]
    fn values_of_one_flag_are_alternatives() {
        let filter = Filter {
            wikis: vec!["frwiki".into(), "enwiki".into()],
            ..Filter::default()
        };
        assert_eq!(check(&filter, EDIT), Ok(()));
        assert_eq!(check(&filter, BOT_LOG), Err(Reason::Wiki));
        assert_eq!(check(&filter, BARE), Err(Reason::Wiki));
    }

    #[test]
    fn flags_combine_with_and() {
        let filter = Filter {
            types: vec!["log".into(), "edit".into()],
            namespaces: vec![14],
            ..Filter::default()
        };
        assert_eq!(check(&filter, BOT_LOG), Ok(()));
        assert_eq!(check(&filter, EDIT), Err(Reason::Namespace));
        assert_eq!(check(&filter, BARE), Err(Reason::Type));
    }

    #[test]
    fn domains_match_subdomains_only_at_a_dot() {
        let filter = Filter {
            domains: vec!["wikipedia.org".into()],
            ..Filter::default()
        };
        assert!(filter.domain_ok("en.wikipedia.org"));
        assert!(filter.domain_ok("wikipedia.org"));
        assert!(!filter.domain_ok("notwikipedia.org"));
        assert_eq!(check(&filter, BARE), Err(Reason::Domain));
    }

    #[test]
    fn bots() {
        let exclude = Filter {
            bots: Some(Bots::Exclude),
            ..Filter::default()
        };
        assert_eq!(check(&exclude, EDIT), Ok(()));
        assert_eq!(check(&exclude, BARE), Ok(()));
        assert_eq!(check(&exclude, BOT_LOG), Err(Reason::Bot));
        let only = Filter {
            bots: Some(Bots::Only),
            ..Filter::default()
        };
        assert_eq!(check(&only, BOT_LOG), Ok(()));
        assert_eq!(check(&only, BARE), Err(Reason::Bot));
    }

    #[test]
    fn regex_on_the_raw_line_and_inverted() {
        let mut filter = Filter {
            pattern: Some(regex_lite::Regex::new(r#""title":"Z"#).expect("regex")),
            ..Filter::default()
        };
        assert_eq!(check(&filter, EDIT), Ok(()));
        assert_eq!(check(&filter, BOT_LOG), Err(Reason::Match));
        filter.invert_match = true;
        assert_eq!(check(&filter, EDIT), Err(Reason::Match));
        assert_eq!(check(&filter, BOT_LOG), Ok(()));
    }

    #[test]
    fn time_range_is_half_open() {
        let filter = Filter {
            from_ms: times::parse_rfc3339_ms("2024-11-23T09:00:00Z"),
            to_ms: times::parse_rfc3339_ms("2024-11-23T10:00:00Z"),
            ..Filter::default()
        };
        assert_eq!(check(&filter, EDIT), Ok(()));
        assert_eq!(check(&filter, BOT_LOG), Err(Reason::Time));
        assert_eq!(check(&filter, BARE), Err(Reason::Time));
        crate::labels::tests::check_label_set::<Reason>();
    }
}
