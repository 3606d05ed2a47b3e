//! Unit tests of the freshness rules (fixed times, no sleeps).

use super::*;
use http::HeaderValue;

const T0: u64 = 1_700_000_000;
const DAY: u64 = 86_400;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs)
}

fn date(secs: u64) -> String {
    httpdate::fmt_http_date(at(secs))
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    h
}

fn fresh_with(
    status: u16,
    pairs: &[(&str, &str)],
    behavior: &Behavior,
) -> Result<Freshness, NotCacheable> {
    freshness(status, &headers(pairs), behavior, at(0))
}

fn fresh(status: u16, pairs: &[(&str, &str)]) -> Result<Freshness, NotCacheable> {
    fresh_with(status, pairs, &Behavior::default())
}

/// TTL in seconds under the default behaviour.
fn ttl(status: u16, pairs: &[(&str, &str)]) -> Result<u64, NotCacheable> {
    fresh(status, pairs).map(|f| f.ttl.as_secs())
}

fn graces(f: Freshness) -> (u64, u64) {
    (
        f.stale_while_revalidate.as_secs(),
        f.stale_if_error.as_secs(),
    )
}

fn no_grace() -> Behavior {
    Behavior {
        stale_while_revalidate_secs: 0,
        stale_if_error_secs: 0,
        ..Behavior::default()
    }
}

#[test]
fn ttl_comes_from_s_maxage_then_max_age_then_expires() {
    let cc = |v| ("cache-control", v);
    let expires = date(300);
    assert_eq!(ttl(200, &[cc("max-age=60, s-maxage=600")]), Ok(600));
    assert_eq!(ttl(200, &[cc("s-maxage=600"), cc("max-age=60")]), Ok(600));
    assert_eq!(ttl(200, &[cc("public, max-age=60")]), Ok(60));
    assert_eq!(
        ttl(200, &[cc("max-age=5"), ("expires", &expires)]),
        Ok(5),
        "max-age over Expires"
    );
    assert_eq!(
        ttl(200, &[("expires", &expires), ("date", &date(0))]),
        Ok(300)
    );
    // Expires counts from the origin's Date, not from when we got it.
    let f = freshness(
        200,
        &headers(&[("expires", &expires), ("date", &date(0))]),
        &Behavior::default(),
        at(100),
    )
    .unwrap();
    // Date does not age the response (clock skew): the 300 s count from receipt.
    assert_eq!((f.ttl.as_secs(), f.initial_age.as_secs()), (300, 0));
    assert_eq!(f.state(at(399)), State::Fresh);
    assert_eq!(f.state(at(400)), State::StaleIfError);
    assert_eq!(
        ttl(200, &[("expires", &expires)]),
        Ok(300),
        "no Date: receipt time"
    );
    assert_eq!(
        ttl(200, &[("expires", &date(0)), ("date", &date(10))]),
        Ok(0),
        "Expires before Date"
    );
}

#[test]
fn first_of_repeated_directives_wins() {
    assert_eq!(
        ttl(200, &[("cache-control", "max-age=10, max-age=20")]),
        Ok(10)
    );
    assert_eq!(
        ttl(
            200,
            &[
                ("cache-control", "max-age=10"),
                ("cache-control", "max-age=20")
            ]
        ),
        Ok(10)
    );
}

#[test]
fn behaviour_bounds_clamp_the_origin_not_the_default() {
    let b = Behavior {
        min_ttl_secs: 10,
        default_ttl_secs: 50,
        max_ttl_secs: 100,
        ..Behavior::default()
    };
    let ttl = |pairs: &[(&str, &str)]| fresh_with(200, pairs, &b).unwrap().ttl.as_secs();
    assert_eq!(ttl(&[("cache-control", "max-age=1")]), 10);
    assert_eq!(ttl(&[("cache-control", "s-maxage=1000")]), 100);
    assert_eq!(ttl(&[("cache-control", "max-age=42")]), 42);
    assert_eq!(ttl(&[("expires", &date(1000))]), 100);
    assert_eq!(ttl(&[("expires", &date(0)), ("etag", "\"e\"")]), 10);
    assert_eq!(ttl(&[]), 50, "default TTL");
    assert_eq!(
        ttl(&[("cache-control", "public")]),
        50,
        "public says nothing"
    );
}

#[test]
fn a_misconfigured_behaviour_does_not_panic() {
    let b = Behavior {
        min_ttl_secs: 100,
        max_ttl_secs: 10,
        stale_while_revalidate_secs: u64::MAX,
        stale_if_error_secs: u64::MAX,
        ..Behavior::default()
    };
    let f = fresh_with(200, &[("cache-control", "max-age=50")], &b).unwrap();
    assert_eq!(f.ttl.as_secs(), 10, "max wins");
    let far = SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 40);
    assert_eq!(f.state(far), State::StaleWhileRevalidate);
    let f = fresh_with(200, &[("age", "99999999999999999999999")], &b).unwrap();
    assert_eq!(f.age(far).as_secs(), (1 << 31) + (1 << 40) - T0);
}

#[test]
fn what_is_never_stored() {
    let cc = |v| ttl(200, &[("cache-control", v)]);
    assert_eq!(cc("no-store"), Err(NotCacheable::NoStore));
    assert_eq!(cc("max-age=60, NO-STORE"), Err(NotCacheable::NoStore));
    assert_eq!(cc("private, max-age=60"), Err(NotCacheable::Private));
    assert_eq!(cc("private=\"set-cookie, x\""), Err(NotCacheable::Private));
    assert_eq!(
        ttl(
            200,
            &[
                ("cache-control", "max-age=60"),
                ("cache-control", "no-store")
            ]
        ),
        Err(NotCacheable::NoStore),
        "directives on any line"
    );
    assert_eq!(
        ttl(200, &[("vary", "accept-encoding, *")]),
        Err(NotCacheable::VaryAll)
    );
    assert_eq!(ttl(200, &[("vary", "accept-encoding")]), Ok(DAY));
    assert_eq!(ttl(206, &[]), Err(NotCacheable::PartialContent));
    for status in [500, 502, 503, 504, 302, 304, 307, 400, 403, 405] {
        assert_eq!(ttl(status, &[]), Err(NotCacheable::Status(status)));
    }
    assert_eq!(
        ttl(500, &[("cache-control", "max-age=60")]),
        Err(NotCacheable::Status(500)),
        "an explicit lifetime does not make a 5xx storable"
    );
    for status in [200, 203, 204, 300, 301, 308] {
        assert_eq!(ttl(status, &[]), Ok(DAY), "{status}");
    }
}

#[test]
fn no_cache_and_must_revalidate_mean_revalidate_every_time() {
    let etag = ("etag", "\"e\"");
    let b = Behavior {
        min_ttl_secs: 30,
        stale_while_revalidate_secs: 60,
        ..Behavior::default()
    };
    let f = fresh_with(200, &[("cache-control", "no-cache"), etag], &b).unwrap();
    assert_eq!(
        (f.ttl.as_secs(), graces(f)),
        (0, (0, 0)),
        "not raised to min TTL; no stale"
    );
    assert_eq!(f.state(at(0)), State::Expired);
    let f = fresh_with(200, &[("cache-control", "no-cache, max-age=600"), etag], &b);
    assert_eq!(f.unwrap().ttl, Duration::ZERO, "the most restrictive wins");
    let f = fresh_with(
        200,
        &[("cache-control", "no-cache=\"set-cookie\""), etag],
        &b,
    );
    assert_eq!(f.unwrap().ttl, Duration::ZERO);
    let f = fresh_with(200, &[("cache-control", "must-revalidate"), etag], &b).unwrap();
    assert_eq!((f.ttl.as_secs(), graces(f)), (0, (0, 0)));
    let cc = ("cache-control", "max-age=60, proxy-revalidate");
    let f = fresh_with(200, &[cc], &b).unwrap();
    assert_eq!(
        (f.ttl.as_secs(), graces(f)),
        (60, (0, 0)),
        "fresh, then no grace"
    );
    assert_eq!(f.state(at(60)), State::Expired);
}

#[test]
fn zero_ttl_without_grace_or_validator_is_not_stored() {
    assert_eq!(
        ttl(200, &[("cache-control", "no-cache")]),
        Err(NotCacheable::ZeroTtl)
    );
    assert_eq!(
        ttl(
            200,
            &[("cache-control", "no-cache"), ("last-modified", &date(0))]
        ),
        Ok(0)
    );
    let disabled = Behavior {
        min_ttl_secs: 0,
        default_ttl_secs: 0,
        max_ttl_secs: 0,
        ..no_grace()
    };
    assert_eq!(fresh_with(200, &[], &disabled), Err(NotCacheable::ZeroTtl));
    assert_eq!(
        fresh_with(200, &[("etag", "\"e\"")], &disabled).map(|f| f.ttl),
        Ok(Duration::ZERO),
        "stored, revalidated on every use"
    );
    let cc = ("cache-control", "max-age=60");
    assert_eq!(
        fresh_with(200, &[cc, ("age", "60")], &no_grace()),
        Err(NotCacheable::ZeroTtl),
        "already expired on arrival"
    );
    assert_eq!(
        ttl(200, &[cc, ("age", "60")]),
        Ok(60),
        "the default stale-if-error keeps it useful"
    );
}

#[test]
fn errors_use_the_error_ttl_unless_the_origin_says_otherwise() {
    assert_eq!(ttl(404, &[]), Ok(10));
    assert_eq!(ttl(410, &[]), Ok(10));
    assert_eq!(ttl(404, &[("cache-control", "max-age=30")]), Ok(30));
    assert_eq!(ttl(410, &[("expires", &date(40))]), Ok(40));
    assert_eq!(
        ttl(404, &[("cache-control", "no-cache"), ("etag", "\"e\"")]),
        Ok(0)
    );
    assert_eq!(
        ttl(404, &[("cache-control", "no-store")]),
        Err(NotCacheable::NoStore)
    );
}

#[test]
fn initial_age_is_the_age_header_never_the_date() {
    let age = |pairs: &[(&str, &str)], now: u64| {
        freshness(200, &headers(pairs), &Behavior::default(), at(now))
            .unwrap()
            .initial_age
            .as_secs()
    };
    assert_eq!(age(&[("age", "20")], 0), 20);
    assert_eq!(
        age(&[("date", &date(0))], 30),
        0,
        "origin clock behind ours"
    );
    assert_eq!(age(&[("date", &date(0)), ("age", "20")], 30), 20);
    assert_eq!(age(&[("date", &date(0)), ("age", "50")], 30), 50);
    assert_eq!(age(&[("date", &date(100))], 30), 0, "origin clock ahead");
    assert_eq!(age(&[("age", "-5")], 0), 0);
    assert_eq!(age(&[("age", "soon")], 0), 0);
    assert_eq!(age(&[("date", "yesterday")], 30), 0);

    let f = fresh(200, &[("age", "20")]).unwrap();
    assert_eq!(f.age(at(10)).as_secs(), 30);
    assert_eq!(
        f.age(SystemTime::UNIX_EPOCH).as_secs(),
        20,
        "clock went backwards"
    );
}

#[test]
fn states_change_at_exact_boundaries() {
    let cc = (
        "cache-control",
        "max-age=100, stale-while-revalidate=10, stale-if-error=50",
    );
    let f = fresh(200, &[cc, ("age", "20")]).unwrap();
    assert_eq!(f.state(at(0)), State::Fresh);
    assert_eq!(f.state(at(79)), State::Fresh);
    assert_eq!(
        f.state(at(80)),
        State::StaleWhileRevalidate,
        "age == ttl is stale"
    );
    assert_eq!(f.state(at(89)), State::StaleWhileRevalidate);
    assert_eq!(f.state(at(90)), State::StaleIfError);
    assert_eq!(f.state(at(129)), State::StaleIfError);
    assert_eq!(f.state(at(130)), State::Expired);

    // A longer stale-while-revalidate covers the stale-if-error window.
    let cc = (
        "cache-control",
        "max-age=10, stale-while-revalidate=100, stale-if-error=50",
    );
    let f = fresh(200, &[cc]).unwrap();
    assert_eq!(f.state(at(60)), State::StaleWhileRevalidate);
    assert_eq!(f.state(at(110)), State::Expired);
}

#[test]
fn stale_grace_from_the_origin_overrides_the_behaviour() {
    let b = Behavior {
        stale_while_revalidate_secs: 30,
        stale_if_error_secs: 300,
        ..Behavior::default()
    };
    let grace = |cc: &str| graces(fresh_with(200, &[("cache-control", cc)], &b).unwrap());
    assert_eq!(grace("max-age=60"), (30, 300), "the behaviour's");
    assert_eq!(
        grace("max-age=60, stale-while-revalidate=5, stale-if-error=7"),
        (5, 7)
    );
    assert_eq!(grace("max-age=60, stale-if-error=0"), (30, 0));
    assert_eq!(
        grace("max-age=60, stale-if-error=junk"),
        (30, 0),
        "invalid: 0"
    );
    assert_eq!(
        grace("s-maxage=60"),
        (0, 0),
        "s-maxage implies proxy-revalidate"
    );
    assert_eq!(
        grace("s-maxage=60, stale-while-revalidate=600"),
        (600, 0),
        "unless the origin itself allows stale"
    );
    assert_eq!(
        grace("max-age=60, must-revalidate, stale-if-error=600"),
        (0, 0)
    );
    assert_eq!(graces(fresh(200, &[]).unwrap()), (0, DAY), "defaults");
}

#[test]
fn renewal_after_a_304_starts_from_now() {
    let b = Behavior::default();
    let stored = headers(&[
        ("cache-control", "max-age=60"),
        ("etag", "\"a\""),
        ("date", &date(0)),
        ("age", "30"),
    ]);
    let f = freshness(200, &stored, &b, at(0)).unwrap();
    assert_eq!(f.state(at(30)), State::StaleIfError);

    // No new Cache-Control: the stored max-age again, from the 304 (no Date: just now).
    let renewed = f.renewed(&stored, &HeaderMap::new(), &b, at(100));
    assert_eq!(
        renewed.initial_age,
        Duration::ZERO,
        "old Date and Age dropped"
    );
    assert_eq!(renewed.state(at(159)), State::Fresh);
    assert_eq!(renewed.state(at(160)), State::StaleIfError);

    // The 304's own headers win.
    let longer = headers(&[
        ("cache-control", "max-age=600, stale-while-revalidate=5"),
        ("date", &date(90)),
        ("age", "3"),
    ]);
    let renewed = f.renewed(&stored, &longer, &b, at(100));
    assert_eq!(renewed.ttl.as_secs(), 600);
    assert_eq!(renewed.initial_age.as_secs(), 3, "the 304's Age");
    assert_eq!(renewed.received, at(100));
    assert_eq!(graces(renewed), (5, DAY));

    // Expires in the stored headers counts from the 304's time, not the old Date.
    let stored = headers(&[
        ("etag", "\"a\""),
        ("expires", &date(200)),
        ("date", &date(0)),
    ]);
    let f = freshness(200, &stored, &b, at(0)).unwrap();
    let renewed = f.renewed(&stored, &HeaderMap::new(), &b, at(150));
    assert_eq!(renewed.ttl.as_secs(), 50);

    // Told not to store any more: expired at once, never served unasked.
    let no_store = headers(&[("cache-control", "no-store")]);
    let renewed = f.renewed(&stored, &no_store, &b, at(150));
    assert_eq!(renewed.state(at(150)), State::Expired);
}

#[test]
fn updated_headers_replace_by_name_and_skip_framing() {
    let stored = headers(&[
        ("etag", "\"a\""),
        ("x-amz-meta-a", "1"),
        ("x-amz-meta-a", "2"),
        ("content-type", "text/plain"),
    ]);
    let update = headers(&[
        ("x-amz-meta-a", "3"),
        ("cache-control", "max-age=5"),
        ("content-length", "0"),
    ]);
    let merged = updated_headers(&stored, &update);
    let all = |name: &str| {
        merged
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(all("x-amz-meta-a"), ["3"]);
    assert_eq!(all("etag"), ["\"a\""]);
    assert_eq!(all("content-type"), ["text/plain"]);
    assert_eq!(all("cache-control"), ["max-age=5"]);
    assert!(!merged.contains_key("content-length"));
}

#[test]
fn revalidation_sends_the_stored_validators() {
    let lm = date(0);
    let h = revalidation_headers(&headers(&[("etag", "\"a\""), ("last-modified", &lm)]));
    assert_eq!(h.len(), 2);
    assert_eq!(h["if-none-match"], "\"a\"");
    assert_eq!(h["if-modified-since"], lm.as_str());
    let h = revalidation_headers(&headers(&[("content-type", "text/plain")]));
    assert!(h.is_empty());
}

#[test]
fn garbage_headers_are_read_safely() {
    let cc = |v| ttl(200, &[("cache-control", v), ("etag", "\"e\"")]);
    assert_eq!(cc("max-age=abc"), Ok(0), "invalid lifetime: stale");
    assert_eq!(cc("max-age=-1"), Ok(0));
    assert_eq!(cc("max-age="), Ok(0));
    assert_eq!(cc("max-age"), Ok(0));
    assert_eq!(cc("max-age=1.5"), Ok(0));
    assert_eq!(cc("max-age=\"60\""), Ok(60));
    assert_eq!(cc(" MAX-AGE = 60 "), Ok(60));
    assert_eq!(cc("max-age=99999999999999999999999999"), Ok(31_536_000));
    for junk in [
        "",
        ",,,",
        "=",
        "\"",
        "=60",
        "max-age=60=60",
        "🦀",
        "no-store\"",
    ] {
        assert!(cc(junk).is_ok(), "{junk:?}");
    }
    assert_eq!(
        ttl(200, &[("expires", "0")]),
        Ok(0),
        "invalid Expires is past"
    );
    assert_eq!(ttl(200, &[("expires", "garbage")]), Ok(0));
    assert_eq!(ttl(200, &[("date", "garbage")]), Ok(DAY));

    let mut h = HeaderMap::new();
    for name in [
        header::CACHE_CONTROL,
        header::EXPIRES,
        header::DATE,
        header::AGE,
        header::VARY,
    ] {
        h.append(
            name,
            HeaderValue::from_bytes(b"\xff\xfe max-age=5").unwrap(),
        );
    }
    h.append(
        header::CACHE_CONTROL,
        HeaderValue::from_bytes(b"\xff, no-store").unwrap(),
    );
    assert_eq!(
        freshness(200, &h, &Behavior::default(), at(0)),
        Err(NotCacheable::NoStore),
        "junk bytes do not hide no-store"
    );
}
