//! What a request asks `serve` for, decided from its head and the catalog alone: the server's
//! description, a CORS preflight, a refusal with its status, or a stream with the position to
//! start from. No I/O.

use super::http::{Request, percent_decode};
use super::position::{Entry, parse_last_event_id};
use super::source::Catalog;
use crate::filter::{Bots, Filter, VALUE_FILTERS};

/// The query parameters of a stream request, with what they do: `/_info` lists them, and an
/// unknown one is refused naming them. The filters mean what `cat`'s flags of the same names
/// mean, and are read by the same code (`Filter::set`).
pub(super) const PARAMETERS: [(&str, &str); 8] = [
    (
        "since",
        "start at this time: milliseconds since the epoch or RFC 3339",
    ),
    (
        "wiki",
        "only these wikis, comma-separated (enwiki,dewiki), as cat --wiki",
    ),
    (
        "type",
        "only these types (edit,new,log,categorize), as cat --type",
    ),
    (
        "domain",
        "only these domains and their subdomains, as cat --domain",
    ),
    (
        "namespace",
        "only these namespace numbers (0,14), as cat --namespace",
    ),
    (
        "bot",
        "true: only bots' events (cat --bots-only); false: none (cat --no-bots)",
    ),
    ("bots_only", "true: only bots' events, as cat --bots-only"),
    (
        "match",
        "only events whose data line matches this regular expression, as cat --match",
    ),
];

/// The answer a request gets.
#[derive(Debug)]
pub(super) enum Route {
    /// `/_info`: the server's description, as JSON.
    Info(String),
    /// `OPTIONS`: a CORS preflight.
    Preflight,
    /// An EventStreams-style error.
    Refuse {
        code: u16,
        detail: String,
    },
    Stream(Box<Wanted>),
}

/// The streams a request asks for and where to start.
#[derive(Debug)]
pub(super) struct Wanted {
    pub(super) names: Vec<String>,
    pub(super) since_ms: Option<i64>,
    /// Which events: filtered events are not sent, but a resume passes them.
    pub(super) filter: Filter,
    /// The positions of `Last-Event-ID`, per topic-partition.
    pub(super) resume: Vec<Entry>,
}

fn refuse(code: u16, detail: impl Into<String>) -> Route {
    Route::Refuse {
        code,
        detail: detail.into(),
    }
}

/// Routes `request`.
pub(super) fn route(request: &Request, catalog: &Catalog) -> Route {
    match request.method.as_str() {
        "GET" | "HEAD" => {}
        "OPTIONS" => return Route::Preflight,
        _ => return refuse(405, "only GET is supported"),
    }
    if request.path == "/_info" {
        let info = serde_json::json!({
            "name": "wikistream-archiver serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "replays archived Wikimedia EventStreams",
            "streams": catalog.streams,
            "parameters": PARAMETERS
                .iter()
                .map(|(name, what)| (name.to_string(), (*what).into()))
                .collect::<serde_json::Map<_, _>>(),
        });
        return Route::Info(info.to_string());
    }
    let Some(names) = request
        .path
        .strip_prefix("/v2/stream/")
        .filter(|s| !s.is_empty())
    else {
        return refuse(404, format!("no route for {}", request.path));
    };
    let names: Vec<String> = names.split(',').map(String::from).collect();
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| n.is_empty() || !catalog.knows(n))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return refuse(400, format!("Invalid streams: {}", unknown.join(",")));
    }
    let (since_ms, filter) = match parse_query(&request.query) {
        Ok(parsed) => parsed,
        Err(e) => return refuse(400, e),
    };
    let resume = match &request.last_event_id {
        Some(id) => match parse_last_event_id(id) {
            Some(entries) => entries,
            None => return refuse(400, format!("invalid Last-Event-ID: {id}")),
        },
        None => Vec::new(),
    };
    Route::Stream(Box::new(Wanted {
        names,
        since_ms,
        filter,
        resume,
    }))
}

/// `since` and the filters of a query string; the error names the parameter.
fn parse_query(query: &str) -> Result<(Option<i64>, Filter), String> {
    let mut since_ms = None;
    let mut filter = Filter::default();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(raw_name).unwrap_or_else(|| raw_name.to_string());
        let value = percent_decode(raw_value)
            .ok_or_else(|| format!("invalid {name}: broken percent-encoding"))?;
        match name.as_str() {
            "since" => match crate::times::parse_ms_or_rfc3339(&value) {
                Ok(ms) => since_ms = Some(ms),
                Err(_) => return Err(format!("invalid since: {value}")),
            },
            "bot" | "bots_only" => {
                let bots = match (name.as_str(), value.as_str()) {
                    (_, "true") => Some(Bots::Only),
                    ("bot", "false") => Some(Bots::Exclude),
                    ("bots_only", "false") => None,
                    _ => return Err(format!("invalid {name}: {value} (true or false)")),
                };
                if bots.is_some() && filter.bots.is_some_and(|b| Some(b) != bots) {
                    return Err(format!(
                        "invalid {name}: {value} contradicts the other bot parameter"
                    ));
                }
                filter.bots = bots.or(filter.bots);
            }
            name if VALUE_FILTERS.contains(&name) => filter
                .set(name, &value)
                .map_err(|e| format!("invalid {name}: {e}"))?,
            _ => {
                let known: Vec<&str> = PARAMETERS.iter().map(|(name, _)| *name).collect();
                return Err(format!(
                    "unknown parameter: {name} (known: {})",
                    known.join(", ")
                ));
            }
        }
    }
    Ok((since_ms, filter))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn catalog() -> Catalog {
        Catalog {
            sources: Vec::new(),
            streams: BTreeSet::from(["mediawiki.recentchange".to_string()]),
        }
    }

    fn get(path: &str, query: &str, last_event_id: Option<&str>) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            query: query.into(),
            last_event_id: last_event_id.map(String::from),
            ..Request::default()
        }
    }

    fn code(route: Route) -> u16 {
        match route {
            Route::Refuse { code, .. } => code,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn streams_are_routed_with_their_start() {
        let request = get("/v2/stream/recentchange", "since=1000", None);
        let Route::Stream(wanted) = route(&request, &catalog()) else {
            panic!("not a stream");
        };
        assert_eq!(wanted.names, ["recentchange"]);
        assert_eq!(wanted.since_ms, Some(1000));
        assert!(wanted.resume.is_empty());
        assert!(wanted.filter.is_empty());
    }

    #[test]
    fn filters_are_read_as_cat_reads_its_flags() {
        let query = "wiki=enwiki,dewiki&type=edit&namespace=0,14&bot=false&domain=wikipedia.org\
                     &match=%5Ba-z%5D%2B";
        let request = get("/v2/stream/recentchange", query, None);
        let Route::Stream(wanted) = route(&request, &catalog()) else {
            panic!("not a stream");
        };
        let filter = wanted.filter;
        assert_eq!(filter.wikis, ["enwiki", "dewiki"]);
        assert_eq!(filter.types, ["edit"]);
        assert_eq!(filter.namespaces, [0, 14]);
        assert_eq!(filter.domains, ["wikipedia.org"]);
        assert_eq!(filter.bots, Some(Bots::Exclude));
        let pattern = filter.pattern.map(|p| p.as_str().to_string());
        assert_eq!(pattern.as_deref(), Some("[a-z]+"));
        for (query, needle) in [
            (
                "wikis=enwiki",
                "unknown parameter: wikis (known: since, wiki,",
            ),
            ("namespace=main", "invalid namespace: 'main'"),
            ("bot=maybe", "invalid bot: maybe"),
            ("bot=false&bots_only=true", "contradicts"),
            ("match=(", "invalid match"),
            ("wiki=", "invalid wiki: needs at least one value"),
            ("wiki=%zz", "broken percent-encoding"),
        ] {
            match route(&get("/v2/stream/recentchange", query, None), &catalog()) {
                Route::Refuse { code: 400, detail } => {
                    assert!(detail.contains(needle), "{query}: {detail}")
                }
                other => panic!("{query}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_requests_are_refused_with_the_status_of_their_fault() {
        let catalog = catalog();
        let post = Request {
            method: "POST".into(),
            ..get("/v2/stream/recentchange", "", None)
        };
        assert_eq!(code(route(&post, &catalog)), 405);
        assert_eq!(code(route(&get("/x", "", None), &catalog)), 404);
        assert_eq!(code(route(&get("/v2/stream/", "", None), &catalog)), 404);
        let unknown = get("/v2/stream/recentchange,nope", "", None);
        assert_eq!(code(route(&unknown, &catalog)), 400);
        let since = get("/v2/stream/recentchange", "since=yesterday", None);
        assert_eq!(code(route(&since, &catalog)), 400);
        let id = get("/v2/stream/recentchange", "", Some("not json"));
        assert_eq!(code(route(&id, &catalog)), 400);
        let options = Request {
            method: "OPTIONS".into(),
            ..get("/v2/stream/recentchange", "", None)
        };
        assert!(matches!(route(&options, &catalog), Route::Preflight));
        assert!(matches!(
            route(&get("/_info", "", None), &catalog),
            Route::Info(info) if info.contains("mediawiki.recentchange")
        ));
    }
}
