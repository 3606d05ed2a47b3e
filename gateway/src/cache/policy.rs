//! Freshness rules as pure functions: time is always a parameter.
//!
//! Modelled on CloudFront's documented behaviour (origin Cache-Control bounded by the
//! behaviour's min/default/max TTL) over RFC 9111 (HTTP caching) and RFC 5861
//! (stale-while-revalidate, stale-if-error).

use std::time::{Duration, SystemTime};

use http::HeaderMap;

use crate::config::Behavior;

/// Why a response is not stored; shown in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCacheable {
    NoStore,
    Private,
    /// A status we never store (206 of a client's own range, 5xx, most 4xx).
    Status(u16),
}

/// When a stored response was received and how long it stays usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    pub received: SystemTime,
    /// Age it already had when received (RFC 9111 4.2.3: `Age` header, or `Date` in the past).
    pub initial_age: Duration,
    /// Lifetime counted from the origin's generation of the response.
    pub ttl: Duration,
    pub stale_while_revalidate: Duration,
    pub stale_if_error: Duration,
}

/// Where an entry stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Fresh,
    /// Expired, within stale-while-revalidate: serve, refresh in the background.
    StaleWhileRevalidate,
    /// Expired, within stale-if-error: revalidate, serve stale only if the origin fails.
    StaleIfError,
    /// Expired beyond every grace.
    Expired,
}

/// What happened to a request: the `X-Cache` header, log field and metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
    /// Expired, revalidated with the origin (304), served from cache.
    RefreshHit,
    /// Served expired: stale-while-revalidate, or the origin failed (stale-if-error).
    Stale,
    /// Not cacheable: passed through.
    Bypass,
}

impl CacheOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "Hit",
            CacheOutcome::Miss => "Miss",
            CacheOutcome::RefreshHit => "RefreshHit",
            CacheOutcome::Stale => "Stale",
            CacheOutcome::Bypass => "Bypass",
        }
    }

    pub fn x_cache(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "Hit from outpost",
            CacheOutcome::Miss => "Miss from outpost",
            CacheOutcome::RefreshHit => "RefreshHit from outpost",
            CacheOutcome::Stale => "Stale from outpost",
            CacheOutcome::Bypass => "Bypass from outpost",
        }
    }
}

/// The Cache-Control directives that matter to a shared cache.
#[derive(Debug, Default)]
struct Directives {
    no_store: bool,
    private: bool,
    /// `no-cache` or `must-revalidate`/`proxy-revalidate` with no lifetime: store, but
    /// revalidate before every use.
    no_cache: bool,
    s_maxage: Option<u64>,
    max_age: Option<u64>,
    stale_while_revalidate: Option<u64>,
    stale_if_error: Option<u64>,
}

fn directives(headers: &HeaderMap) -> Directives {
    let mut d = Directives::default();
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let (name, arg) = match item.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (item.trim(), None),
            };
            let secs = || arg.and_then(|a| a.parse::<u64>().ok());
            match name.to_ascii_lowercase().as_str() {
                "no-store" => d.no_store = true,
                "private" => d.private = true,
                "no-cache" => d.no_cache = true,
                "s-maxage" => d.s_maxage = secs(),
                "max-age" => d.max_age = secs(),
                "stale-while-revalidate" => d.stale_while_revalidate = secs(),
                "stale-if-error" => d.stale_if_error = secs(),
                _ => {}
            }
        }
    }
    d
}

fn date(headers: &HeaderMap, name: http::header::HeaderName) -> Option<SystemTime> {
    httpdate::parse_http_date(headers.get(name)?.to_str().ok()?).ok()
}

/// Decides whether an origin response may be stored, and for how long.
///
/// TTL: `s-maxage` over `max-age` over `Expires − Date`, clamped to the behaviour's
/// [min, max]; the default TTL when the origin says nothing. `no-store` and `private` are
/// never stored; `no-cache` is stored with TTL 0 (revalidated on every use). 404 and 410
/// without an explicit lifetime use the behaviour's error TTL. 206 (a client's range) and
/// every other status are not stored: they are answered, not kept.
pub fn freshness(
    status: u16,
    headers: &HeaderMap,
    behavior: &Behavior,
    now: SystemTime,
) -> Result<Freshness, NotCacheable> {
    let d = directives(headers);
    if d.no_store {
        return Err(NotCacheable::NoStore);
    }
    if d.private {
        return Err(NotCacheable::Private);
    }
    let error = matches!(status, 404 | 410);
    if !matches!(status, 200 | 203 | 204 | 300 | 301 | 308) && !error {
        return Err(NotCacheable::Status(status));
    }
    let origin_date = date(headers, http::header::DATE);
    let explicit = d
        .s_maxage
        .or(d.max_age)
        .map(Duration::from_secs)
        .or_else(|| {
            let expires = date(headers, http::header::EXPIRES)?;
            Some(
                expires
                    .duration_since(origin_date.unwrap_or(now))
                    .unwrap_or(Duration::ZERO),
            )
        });
    let ttl = match explicit {
        _ if d.no_cache => Duration::ZERO,
        Some(ttl) => ttl.clamp(behavior.min_ttl(), behavior.max_ttl()),
        None if error => behavior.error_ttl(),
        None => behavior.default_ttl(),
    };
    // RFC 9111 4.2.3: apparent age from Date, corrected by the Age header; whichever is larger.
    let apparent = origin_date
        .and_then(|d| now.duration_since(d).ok())
        .unwrap_or(Duration::ZERO);
    let age_header = headers
        .get(http::header::AGE)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::ZERO);
    Ok(Freshness {
        received: now,
        initial_age: apparent.max(age_header),
        ttl,
        stale_while_revalidate: d
            .stale_while_revalidate
            .map(Duration::from_secs)
            .unwrap_or(behavior.stale_while_revalidate()),
        stale_if_error: d
            .stale_if_error
            .map(Duration::from_secs)
            .unwrap_or(behavior.stale_if_error()),
    })
}

impl Freshness {
    /// The response's age at `now` (RFC 9111 4.2.3), for the `Age` header.
    pub fn age(&self, now: SystemTime) -> Duration {
        self.initial_age + now.duration_since(self.received).unwrap_or(Duration::ZERO)
    }

    pub fn state(&self, now: SystemTime) -> State {
        let age = self.age(now);
        if age < self.ttl {
            State::Fresh
        } else if age < self.ttl + self.stale_while_revalidate {
            State::StaleWhileRevalidate
        } else if age < self.ttl + self.stale_if_error {
            State::StaleIfError
        } else {
            State::Expired
        }
    }

    /// After a 304: the stored headers updated by the 304's (RFC 9111 4.3.4) give a fresh
    /// lifetime from `now`.
    pub fn renewed(
        &self,
        stored: &HeaderMap,
        not_modified: &HeaderMap,
        behavior: &Behavior,
        now: SystemTime,
    ) -> Freshness {
        let mut merged = stored.clone();
        for name in not_modified.keys() {
            merged.remove(name);
        }
        for (name, value) in not_modified {
            merged.append(name, value.clone());
        }
        freshness(200, &merged, behavior, now).unwrap_or(Freshness {
            received: now,
            initial_age: Duration::ZERO,
            ..*self
        })
    }
}

/// A client's conditional GET against what we hold: true when the answer is 304.
/// RFC 9110 13.2.2: If-None-Match (weak comparison, `*` matches anything) takes precedence
/// over If-Modified-Since.
pub fn not_modified(
    request: &HeaderMap,
    etag: Option<&str>,
    last_modified: Option<SystemTime>,
) -> bool {
    let header = |name| {
        request
            .get(name)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
    };
    if let Some(candidates) = header(http::header::IF_NONE_MATCH) {
        let Some(etag) = etag else { return false };
        let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
        return candidates
            .split(',')
            .any(|c| c.trim() == "*" || strip(c) == strip(etag));
    }
    match (
        header(http::header::IF_MODIFIED_SINCE).and_then(|v| httpdate::parse_http_date(v).ok()),
        last_modified,
    ) {
        (Some(since), Some(modified)) => modified <= since,
        _ => false,
    }
}

/// Validators to revalidate a stored response with (RFC 9111 4.3.1).
pub fn revalidation_headers(stored: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    if let Some(etag) = stored.get(http::header::ETAG) {
        out.insert(http::header::IF_NONE_MATCH, etag.clone());
    }
    if let Some(modified) = stored.get(http::header::LAST_MODIFIED) {
        out.insert(http::header::IF_MODIFIED_SINCE, modified.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ttl(status: u16, pairs: &[(&str, &str)]) -> Result<u64, NotCacheable> {
        freshness(status, &headers(pairs), &Behavior::default(), at(0)).map(|f| f.ttl.as_secs())
    }

    fn httpdate(t: SystemTime) -> String {
        httpdate::fmt_http_date(t)
    }

    #[test]
    fn ttl_sources_in_order() {
        assert_eq!(
            ttl(200, &[("cache-control", "max-age=60, s-maxage=600")]),
            Ok(600)
        );
        assert_eq!(ttl(200, &[("cache-control", "public, max-age=60")]), Ok(60));
        let expires = httpdate(at(300));
        assert_eq!(
            ttl(200, &[("expires", &expires), ("date", &httpdate(at(0)))]),
            Ok(300)
        );
        assert_eq!(
            ttl(
                200,
                &[("cache-control", "max-age=5"), ("expires", &expires)]
            ),
            Ok(5)
        );
        assert_eq!(ttl(200, &[]), Ok(86_400), "default TTL");
        assert_eq!(ttl(200, &[("expires", "garbage")]), Ok(86_400));
        assert_eq!(ttl(200, &[("cache-control", "max-age=abc")]), Ok(86_400));
    }

    #[test]
    fn behaviour_bounds_clamp_the_origin() {
        let b = Behavior {
            min_ttl_secs: 10,
            max_ttl_secs: 100,
            default_ttl_secs: 50,
            ..Behavior::default()
        };
        let f = |cc: &str| {
            freshness(200, &headers(&[("cache-control", cc)]), &b, at(0))
                .unwrap()
                .ttl
                .as_secs()
        };
        assert_eq!(f("max-age=1"), 10);
        assert_eq!(f("max-age=1000"), 100);
        assert_eq!(f("max-age=42"), 42);
    }

    #[test]
    fn what_is_never_stored() {
        assert_eq!(
            ttl(200, &[("cache-control", "no-store")]),
            Err(NotCacheable::NoStore)
        );
        assert_eq!(
            ttl(200, &[("cache-control", "private, max-age=60")]),
            Err(NotCacheable::Private)
        );
        assert_eq!(ttl(206, &[]), Err(NotCacheable::Status(206)));
        assert_eq!(ttl(500, &[]), Err(NotCacheable::Status(500)));
        assert_eq!(ttl(403, &[]), Err(NotCacheable::Status(403)));
        assert_eq!(
            ttl(200, &[("cache-control", "no-cache")]),
            Ok(0),
            "stored, always revalidated"
        );
    }

    #[test]
    fn errors_use_the_error_ttl_unless_told_otherwise() {
        assert_eq!(ttl(404, &[]), Ok(10));
        assert_eq!(ttl(410, &[("cache-control", "max-age=30")]), Ok(30));
    }

    #[test]
    fn age_and_states_at_the_boundaries() {
        let h = headers(&[
            ("cache-control", "max-age=100, stale-while-revalidate=10"),
            ("age", "20"),
        ]);
        let f = freshness(200, &h, &Behavior::default(), at(0)).unwrap();
        assert_eq!(f.age(at(0)).as_secs(), 20);
        assert_eq!(f.state(at(79)), State::Fresh);
        assert_eq!(f.state(at(80)), State::StaleWhileRevalidate);
        assert_eq!(f.state(at(89)), State::StaleWhileRevalidate);
        assert_eq!(
            f.state(at(90)),
            State::StaleIfError,
            "behaviour's default stale-if-error"
        );
        assert_eq!(f.state(at(80 + 86_400)), State::Expired);

        // Date in the past counts as age too.
        let h = headers(&[("cache-control", "max-age=100"), ("date", &httpdate(at(0)))]);
        let f = freshness(200, &h, &Behavior::default(), at(30)).unwrap();
        assert_eq!(f.age(at(30)).as_secs(), 30);
        let h = headers(&[("cache-control", "max-age=100, stale-if-error=0")]);
        let f = freshness(200, &h, &Behavior::default(), at(0)).unwrap();
        assert_eq!(f.state(at(100)), State::Expired);
    }

    #[test]
    fn a_304_renews_from_now() {
        let stored = headers(&[("cache-control", "max-age=60"), ("etag", "\"a\"")]);
        let f = freshness(200, &stored, &Behavior::default(), at(0)).unwrap();
        let renewed = f.renewed(&stored, &HeaderMap::new(), &Behavior::default(), at(100));
        assert_eq!(renewed.state(at(159)), State::Fresh);
        assert_eq!(renewed.state(at(160)), State::StaleIfError);
        let longer = headers(&[("cache-control", "max-age=600")]);
        let renewed = f.renewed(&stored, &longer, &Behavior::default(), at(100));
        assert_eq!(renewed.ttl.as_secs(), 600);
    }

    #[test]
    fn client_conditionals() {
        let t = Some(at(0));
        let nm = |v: &str| headers(&[("if-none-match", v)]);
        assert!(not_modified(&nm("\"a\""), Some("\"a\""), t));
        assert!(
            not_modified(&nm("W/\"a\""), Some("\"a\""), t),
            "weak comparison"
        );
        assert!(not_modified(&nm("\"x\", \"a\""), Some("\"a\""), t));
        assert!(not_modified(&nm("*"), Some("\"a\""), t));
        assert!(!not_modified(&nm("\"b\""), Some("\"a\""), t));
        let ims = |v: SystemTime| headers(&[("if-modified-since", &httpdate(v))]);
        assert!(not_modified(&ims(at(0)), None, t));
        assert!(!not_modified(&ims(at(0)), None, Some(at(1))));
        // If-None-Match wins over If-Modified-Since.
        let both = headers(&[
            ("if-none-match", "\"b\""),
            ("if-modified-since", &httpdate(at(5))),
        ]);
        assert!(!not_modified(&both, Some("\"a\""), t));
        assert!(!not_modified(
            &headers(&[("if-modified-since", "junk")]),
            None,
            t
        ));
    }

    #[test]
    fn validators() {
        let stored = headers(&[("etag", "\"a\""), ("last-modified", &httpdate(at(0)))]);
        let h = revalidation_headers(&stored);
        assert_eq!(h.get("if-none-match").unwrap(), "\"a\"");
        assert!(h.contains_key("if-modified-since"));
    }
}
