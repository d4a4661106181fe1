//! What a request asks `serve` for, decided from its head and the catalog alone: the server's
//! description, a CORS preflight, a refusal with its status, or a stream with the position to
//! start from. No I/O.

use super::http::{Request, query_param};
use super::position::{Entry, parse_last_event_id};
use super::source::Catalog;

/// The answer a request gets.
#[derive(Debug, PartialEq)]
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
    Stream(Wanted),
}

/// The streams a request asks for and where to start.
#[derive(Debug, PartialEq)]
pub(super) struct Wanted {
    pub(super) names: Vec<String>,
    pub(super) since_ms: Option<i64>,
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
    let since_ms = match query_param(&request.query, "since") {
        Some(since) => match crate::times::parse_ms_or_rfc3339(&since) {
            Ok(ms) => Some(ms),
            Err(_) => return refuse(400, format!("invalid since: {since}")),
        },
        None => None,
    };
    let resume = match &request.last_event_id {
        Some(id) => match parse_last_event_id(id) {
            Some(entries) => entries,
            None => return refuse(400, format!("invalid Last-Event-ID: {id}")),
        },
        None => Vec::new(),
    };
    Route::Stream(Wanted {
        names,
        since_ms,
        resume,
    })
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
        assert_eq!(route(&options, &catalog), Route::Preflight);
        assert!(matches!(
            route(&get("/_info", "", None), &catalog),
            Route::Info(info) if info.contains("mediawiki.recentchange")
        ));
    }
}
