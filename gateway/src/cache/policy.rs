//! Freshness rules as pure functions: time is always a parameter, so tests pick the clock.
//!
//! Whether and how long a response is kept follows CloudFront's documented behaviour (the
//! origin's lifetime bounded by the behaviour's min/max TTL, the default TTL when the origin is
//! silent, a short error TTL for 404/410) over the HTTP caching rules of RFC 9111, with the
//! stale extensions of RFC 5861. A client's conditional requests are the kit's
//! (`outpost_store::s3::headers::evaluate`), the same as the store's. Pingora's
//! `pingora-cache` is the model for the shape: named outcomes, named reasons not to store.
//!
//! Where we differ from CloudFront, we are stricter: `no-store` and `private` are never stored
//! and `no-cache` is always revalidated, whatever the behaviour's minimum TTL.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderName};
use outpost_store::s3::headers::list_members;

use super::outcome::NotCacheable;
use crate::config::Behavior;

/// When a stored response was received and how long it stays usable.
///
/// The response is fresh while its age is below `ttl` (RFC 9111 4.2); after that it is stale,
/// and the two graces say for how long past `ttl` a stale copy may still be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// When the edge received the response.
    pub received: SystemTime,
    /// Age it already had when received: its `Age` header (see `freshness` on `Date`).
    pub initial_age: Duration,
    /// Freshness lifetime, counted from the origin's generation of the response.
    pub ttl: Duration,
    /// How long past `ttl` it may be served while it is refreshed in the background.
    pub stale_while_revalidate: Duration,
    /// How long past `ttl` it may be served when the origin fails.
    pub stale_if_error: Duration,
}

/// Where a stored response stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Serve it.
    Fresh,
    /// Expired, within stale-while-revalidate: serve it, refresh in the background.
    StaleWhileRevalidate,
    /// Expired, within stale-if-error: revalidate; serve it only if the origin fails.
    StaleIfError,
    /// Expired beyond every grace: revalidate, never serve it as it is.
    Expired,
}

/// Decides whether an origin response (status and end-to-end headers) may be stored, and for
/// how long, as received at `now`. Never panics, whatever the headers hold.
///
/// - Stored: 200, 203, 204, 300, 301, 308 (heuristically cacheable, RFC 9110 15.1), and
///   404/410. Not stored: 206 ([`NotCacheable::PartialContent`]) and every other status,
///   5xx included ([`NotCacheable::Status`]); `no-store`, `private` and `Vary: *` whatever the
///   status.
/// - TTL: `s-maxage`, else `max-age`, else `Expires − Date`, clamped to the behaviour's
///   [min, max]. When the origin gives none of them: the error TTL for 404/410, the default
///   TTL otherwise (neither clamped). `no-cache`, and `must-revalidate`/`proxy-revalidate`
///   without a lifetime, give TTL 0: stored, but revalidated before every use.
/// - Grace: the origin's `stale-while-revalidate`/`stale-if-error` (RFC 5861) override the
///   behaviour's. `no-cache`, `must-revalidate` and `proxy-revalidate` allow no stale use
///   at all; `s-maxage` withdraws only the behaviour's grace.
/// - Invalid values count against the response: a bad `max-age` is 0 (RFC 9111 4.2.1), a bad
///   `Expires` is in the past (5.3); of repeated directives the first wins (4.2.1).
pub fn freshness(
    status: u16,
    headers: &HeaderMap,
    behavior: &Behavior,
    now: SystemTime,
) -> Result<Freshness, NotCacheable> {
    let error = match status {
        200 | 203 | 204 | 300 | 301 | 308 => false,
        404 | 410 => true,
        206 => return Err(NotCacheable::PartialContent),
        _ => return Err(NotCacheable::Status(status)),
    };
    let d = Directives::parse(headers);
    if d.no_store {
        return Err(NotCacheable::NoStore);
    }
    if d.private {
        return Err(NotCacheable::Private);
    }
    if list_members(headers, &header::VARY)
        .iter()
        .any(|m| m == "*")
    {
        return Err(NotCacheable::VaryAll);
    }

    // A Date that does not parse is as good as none: the receipt time stands in (RFC 9110
    // 6.6.1).
    let date = headers
        .get(header::DATE)
        .and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok());
    let origin_ttl = d
        .s_maxage
        .or(d.max_age)
        .map(Duration::from_secs)
        .or_else(|| {
            let expires = headers.get(header::EXPIRES)?;
            let expires = expires
                .to_str()
                .ok()
                .and_then(|v| httpdate::parse_http_date(v).ok())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            Some(
                expires
                    .duration_since(date.unwrap_or(now))
                    .unwrap_or_default(),
            )
        });
    let ttl = if d.no_cache || (d.revalidate && origin_ttl.is_none()) {
        Duration::ZERO
    } else {
        match origin_ttl {
            // Not `clamp`, which panics when min > max: no config may make this panic.
            Some(ttl) => ttl.max(behavior.min_ttl()).min(behavior.max_ttl()),
            None if error => behavior.error_ttl(),
            None => behavior.default_ttl(),
        }
    };

    // RFC 9111 4.2.3 counts `now − Date` too; like Varnish we trust only the Age header: an
    // origin whose clock runs a minute behind the edge's would otherwise hand us responses
    // already a minute old, and short TTLs would never be fresh. (Expires − Date stays: both
    // come from the origin's clock.)
    let age_value = headers
        .get(header::AGE)
        .and_then(|v| delta_seconds(v.to_str().ok()?))
        .map(Duration::from_secs)
        .unwrap_or_default();
    let (stale_while_revalidate, stale_if_error) = grace(&d, behavior);
    let freshness = Freshness {
        received: now,
        initial_age: age_value,
        ttl,
        stale_while_revalidate,
        stale_if_error,
    };
    let has_validator =
        headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED);
    if freshness.state(now) == State::Expired && !has_validator {
        return Err(NotCacheable::ZeroTtl);
    }
    Ok(freshness)
}

/// How long a stale copy may be served: (stale-while-revalidate, stale-if-error).
///
/// The behaviour's grace is an out-of-band permission to serve stale (RFC 9111 4.2.4).
/// `s-maxage` implies `proxy-revalidate` for a shared cache (5.2.2.10), so it withdraws that
/// permission, but the origin's own RFC 5861 directives next to it still apply: they are the
/// common CDN idiom (`s-maxage=60, stale-while-revalidate=600`). `no-cache`, `must-revalidate`
/// and `proxy-revalidate` forbid stale outright, and the most restrictive directive wins
/// (4.2.1).
fn grace(d: &Directives, behavior: &Behavior) -> (Duration, Duration) {
    let pick = |origin: Option<u64>, configured: Duration| {
        if d.no_cache || d.revalidate {
            Duration::ZERO
        } else if let Some(secs) = origin {
            Duration::from_secs(secs)
        } else if d.s_maxage.is_some() {
            Duration::ZERO
        } else {
            configured
        }
    };
    (
        pick(d.stale_while_revalidate, behavior.stale_while_revalidate()),
        pick(d.stale_if_error, behavior.stale_if_error()),
    )
}

impl Freshness {
    /// The response's current age at `now` (RFC 9111 4.2.3), for the `Age` header: its
    /// initial age plus the time it has been held. A clock that went backwards adds nothing.
    pub fn age(&self, now: SystemTime) -> Duration {
        let held = now.duration_since(self.received).unwrap_or_default();
        self.initial_age.saturating_add(held)
    }

    /// Where the response stands at `now`. Fresh while `age < ttl` (RFC 9111 4.2: at exactly
    /// `ttl` it is stale); each grace is a half-open window `[ttl, ttl + grace)`, and
    /// stale-while-revalidate is tried first.
    pub fn state(&self, now: SystemTime) -> State {
        match self.age(now).checked_sub(self.ttl) {
            None => State::Fresh,
            Some(stale_for) if stale_for < self.stale_while_revalidate => {
                State::StaleWhileRevalidate
            }
            Some(stale_for) if stale_for < self.stale_if_error => State::StaleIfError,
            Some(_) => State::Expired,
        }
    }

    /// The lifetime after a 304 received at `now`: [`freshness`] of the stored headers
    /// updated by the 304's ([`updated_headers`], RFC 9111 4.3.4), with the lifetime rules
    /// of a 200. We send conditional requests only for stored responses that have
    /// validators, and those are our successes.
    ///
    /// If the updated headers now forbid storing (`no-store`, `private`), the result is
    /// already [`State::Expired`]: never served again without asking the origin.
    pub fn renewed(
        &self,
        stored: &HeaderMap,
        not_modified: &HeaderMap,
        behavior: &Behavior,
        now: SystemTime,
    ) -> Freshness {
        let mut merged = updated_headers(stored, not_modified);
        // The 304 is the new response: its own Date and Age date it (RFC 9111 4.2.3), or
        // their absence says it was generated just now. The stored ones describe the old one.
        for name in [header::DATE, header::AGE] {
            if !not_modified.contains_key(&name) {
                merged.remove(&name);
            }
        }
        freshness(200, &merged, behavior, now).unwrap_or(Freshness {
            received: now,
            initial_age: Duration::ZERO,
            ttl: Duration::ZERO,
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
        })
    }
}

/// The stored headers updated by a 304's (RFC 9111 3.2, 4.3.4): every field the 304 carries
/// replaces the stored field of that name; all others stay. Framing fields are not taken
/// from the 304: 3.2 excludes Content-Length, and a stored head keeps no framing.
pub fn updated_headers(stored: &HeaderMap, not_modified: &HeaderMap) -> HeaderMap {
    const FRAMING: [HeaderName; 3] = [
        header::CONTENT_LENGTH,
        header::CONTENT_RANGE,
        header::TRANSFER_ENCODING,
    ];
    let updates: Vec<_> = not_modified
        .iter()
        .filter(|(name, _)| !FRAMING.contains(name))
        .collect();
    let mut merged = stored.clone();
    for (name, _) in &updates {
        merged.remove(*name);
    }
    for (name, value) in updates {
        merged.append(name, value.clone());
    }
    merged
}

/// The validators to revalidate a stored response with (RFC 9111 4.3.1): `If-None-Match`
/// from its `ETag`, `If-Modified-Since` from its `Last-Modified`; both when it has both (the
/// origin gives the first precedence). Empty when it has neither.
pub fn revalidation_headers(stored: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    if let Some(etag) = stored.get(header::ETAG) {
        out.insert(header::IF_NONE_MATCH, etag.clone());
    }
    if let Some(modified) = stored.get(header::LAST_MODIFIED) {
        out.insert(header::IF_MODIFIED_SINCE, modified.clone());
    }
    out
}

/// The Cache-Control response directives a shared cache acts on (RFC 9111 5.2.2).
#[derive(Debug, Default)]
struct Directives {
    no_store: bool,
    /// With or without field names: see [`NotCacheable::Private`].
    private: bool,
    /// With or without field names: we keep no per-field state, so the whole response is
    /// revalidated (5.2.2.4).
    no_cache: bool,
    /// `must-revalidate` or `proxy-revalidate` (5.2.2.2, 5.2.2.8).
    revalidate: bool,
    s_maxage: Option<u64>,
    max_age: Option<u64>,
    stale_while_revalidate: Option<u64>,
    stale_if_error: Option<u64>,
}

impl Directives {
    fn parse(headers: &HeaderMap) -> Directives {
        let mut d = Directives::default();
        for member in list_members(headers, &header::CACHE_CONTROL) {
            let (name, arg) = member.split_once('=').unwrap_or((member.as_str(), ""));
            // An invalid number reads as 0, the restrictive reading (4.2.1); the first of
            // repeated directives wins (4.2.1).
            let seconds = |slot: &mut Option<u64>| {
                slot.get_or_insert(delta_seconds(arg).unwrap_or(0));
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "no-store" => d.no_store = true,
                "private" => d.private = true,
                "no-cache" => d.no_cache = true,
                "must-revalidate" | "proxy-revalidate" => d.revalidate = true,
                "s-maxage" => seconds(&mut d.s_maxage),
                "max-age" => seconds(&mut d.max_age),
                "stale-while-revalidate" => seconds(&mut d.stale_while_revalidate),
                "stale-if-error" => seconds(&mut d.stale_if_error),
                _ => {}
            }
        }
        d
    }
}

/// delta-seconds (RFC 9111 1.2.2): digits only, quotes tolerated. Values too large to
/// represent become 2^31, as the RFC asks; anything else is `None`.
fn delta_seconds(value: &str) -> Option<u64> {
    const MAX: u64 = 1 << 31;
    let digits = value.trim().trim_matches('"');
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse::<u64>().map_or(MAX, |secs| secs.min(MAX)))
}

#[cfg(test)]
mod tests;
