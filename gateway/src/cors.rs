//! CORS at the edge. A bucket's rules are learnt from its origin (GetBucketCors, signed with
//! the edge's key) and kept [`TTL`] by the cache clock, "no configuration" and "no such bucket"
//! too: a change at the store is seen at every edge within that bound. Preflight answers are
//! kept per (bucket, Origin, method, request headers), each until the rules it came from
//! expire, so none outlives them. Answers that failed (origin unreachable) are not kept. A
//! change made through the edge (Put/DeleteBucketCors forwarded) is seen by it at once.
//!
//! Matching and the headers themselves are the kit's ([`outpost_store::s3::cors`]), as at the
//! store.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use moka::ops::compute::Op;
use outpost_store::error::{Code, Error, Result};
use outpost_store::s3::cors::{CorsConfiguration, Preflight, PreflightRequest};

use crate::cache::outcome::CacheOutcome;
use crate::origin::{self, OriginError, OriginGroup, OriginRequest};

/// How long, at most, the edge answers by rules the store has since changed.
pub const TTL: Duration = Duration::from_secs(5);
/// Bytes each of the two caches holds at most, weighed by their text: a client choosing
/// Origins and request headers at will cannot make the edge keep more.
const CAPACITY_BYTES: u64 = 16 << 20;
/// S3 takes CORS documents of up to 64 KB; the store writes them back no larger.
const MAX_DOCUMENT: usize = 128 << 10;

/// What the origin said of a bucket's CORS: its rules, none, or no such bucket.
type Learnt = std::result::Result<Option<Arc<CorsConfiguration>>, Code>;

/// A kept answer, and which learning of the rules it comes from, when.
#[derive(Clone)]
struct Held<T> {
    learnt_at: SystemTime,
    /// Numbers each learning of a bucket's rules (an answer from older rules is not used).
    learning: u64,
    value: T,
}

impl<T> Held<T> {
    /// Still within [`TTL`] of the learning at `now` (a clock that went back: no longer).
    fn fresh(&self, now: SystemTime) -> bool {
        now.duration_since(self.learnt_at)
            .is_ok_and(|age| age < TTL)
    }
}

/// Where a request's rules come from: an origin group, a bucket there, and a scope keeping
/// apart the same bucket behind different origin groups (the S3 face, each site).
pub struct Source {
    pub scope: String,
    pub origins: Arc<OriginGroup>,
    pub bucket: String,
}

pub struct Cors {
    learnings: std::sync::atomic::AtomicU64,
    rules: moka::future::Cache<(String, String), Held<Learnt>>,
    preflights: moka::future::Cache<(String, String, PreflightRequest), Held<Preflight>>,
}

impl Default for Cors {
    fn default() -> Self {
        let rules_weight = |(scope, bucket): &(String, String), held: &Held<Learnt>| {
            let rules = held.value.as_ref().ok().and_then(Option::as_ref);
            // Weighed once, as it is inserted.
            let text = rules.map_or(0, |c| c.to_xml().len());
            weight(scope.len() + bucket.len() + text)
        };
        let preflight_weight = |(scope, bucket, asked): &(String, String, PreflightRequest),
                                _: &Held<Preflight>| {
            let headers: usize = asked.headers.iter().map(String::len).sum();
            // The answer's headers are the rule's and the asked ones again.
            weight(scope.len() + bucket.len() + asked.origin.len() + 2 * headers + 512)
        };
        Cors {
            learnings: std::sync::atomic::AtomicU64::new(0),
            rules: kept(rules_weight),
            preflights: kept(preflight_weight),
        }
    }
}

/// A cache weighed in bytes; freshness is read from the cache clock, real time only evicts
/// what has gone stale.
fn kept<K, V>(weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> moka::future::Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    moka::future::Cache::builder()
        .max_capacity(CAPACITY_BYTES)
        .weigher(weigher)
        .time_to_live(2 * TTL)
        .support_invalidation_closures()
        .build()
}

/// An entry's weight: its text and what holding it costs besides.
fn weight(text: usize) -> u32 {
    u32::try_from(text + 128).unwrap_or(u32::MAX)
}

impl Cors {
    /// The bucket's rules as the origin last said them, within [`TTL`] of `now`.
    pub async fn rules(
        &self,
        source: &Source,
        now: SystemTime,
    ) -> Result<Option<Arc<CorsConfiguration>>> {
        self.held_rules(source, now)
            .await?
            .value
            .map_err(Error::new)
    }

    /// Learns the rules again once they are stale; concurrent requests for one bucket wait
    /// for the one origin request.
    async fn held_rules(&self, source: &Source, now: SystemTime) -> Result<Held<Learnt>> {
        let key = (source.scope.clone(), source.bucket.clone());
        let done = self
            .rules
            .entry(key)
            .and_try_compute_with(|held| async move {
                if held.is_some_and(|h| h.value().fresh(now)) {
                    return Ok(Op::Nop);
                }
                let value = learn(&source.origins, &source.bucket).await?;
                let learning = self
                    .learnings
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok::<_, Error>(Op::Put(Held {
                    learnt_at: now,
                    learning,
                    value,
                }))
            })
            .await?;
        Ok(done
            .into_entry()
            .expect("kept, or just learnt")
            .into_value())
    }

    /// Drops what is held for `bucket` in `scope` (its rules changed through this edge): the
    /// next request learns them again, and no answer kept from the old ones is used.
    pub async fn forget(&self, scope: &str, bucket: &str) {
        self.rules
            .invalidate(&(scope.to_owned(), bucket.to_owned()))
            .await;
    }

    /// Drops what is held for `bucket` in every scope (the store's change feed said its rules
    /// changed).
    pub fn forget_bucket(&self, bucket: &str) {
        let bucket = bucket.to_owned();
        self.rules
            .invalidate_entries_if(move |(_, b), _| *b == bucket)
            .expect("invalidation closures are enabled");
    }

    /// The answer to `asked`; one that allows says whether it was kept (`X-Cache: Hit from
    /// outpost`) or just worked out (`Miss from outpost`).
    pub async fn preflight(
        &self,
        source: &Source,
        asked: &PreflightRequest,
        now: SystemTime,
    ) -> Result<Preflight> {
        let key = (source.scope.clone(), source.bucket.clone(), asked.clone());
        // An answer is good while the rules it came from are the ones held (not forgotten,
        // not learnt again since).
        let rules_key = (source.scope.clone(), source.bucket.clone());
        let current = self.rules.get(&rules_key).await.map(|h| h.learning);
        let kept = self
            .preflights
            .get(&key)
            .await
            .filter(|h| h.fresh(now) && Some(h.learning) == current);
        let (mut answer, outcome) = match kept {
            Some(kept) => (kept.value, CacheOutcome::Hit),
            None => {
                let rules = self.held_rules(source, now).await?;
                let config = rules.value.map_err(Error::new)?;
                let answer = Preflight::answer(config.as_deref(), asked);
                let held = Held {
                    learnt_at: rules.learnt_at,
                    learning: rules.learning,
                    value: answer.clone(),
                };
                self.preflights.insert(key, held).await;
                (answer, CacheOutcome::Miss)
            }
        };
        if let Preflight::Allowed(headers) = &mut answer {
            headers.insert("x-cache", HeaderValue::from_static(outcome.x_cache()));
        }
        Ok(answer)
    }
}

/// GetBucketCors at the origin, signed with the edge's key.
async fn learn(origins: &OriginGroup, bucket: &str) -> Result<Learnt> {
    let request = OriginRequest {
        method: Method::GET,
        path_and_query: origin::path(bucket, "", "cors"),
        headers: HeaderMap::new(),
        anonymous: false,
        aws_chunked: false,
    };
    let response = origins
        .fetch(&request)
        .await
        .map_err(OriginError::into_client_error)?;
    let status = response.status();
    let unreadable = || {
        Error::msg(
            Code::ServiceUnavailable,
            "The origin did not return the bucket's CORS configuration.",
        )
    };
    let body = axum::body::to_bytes(Body::new(response.into_body()), MAX_DOCUMENT)
        .await
        .map_err(|_| unreadable())?;
    match (status, error_code(&body)) {
        (StatusCode::OK, _) => {
            let rules = CorsConfiguration::parse(&body).map_err(|e| {
                tracing::warn!(bucket, error = ?e, "the origin's CORS configuration does not parse");
                unreadable()
            })?;
            Ok(Ok(Some(Arc::new(rules))))
        }
        (StatusCode::NOT_FOUND, Some("NoSuchCORSConfiguration")) => Ok(Ok(None)),
        (StatusCode::NOT_FOUND, Some("NoSuchBucket")) => Ok(Err(Code::NoSuchBucket)),
        (status, code) => {
            tracing::warn!(bucket, %status, ?code, "GetBucketCors at the origin failed");
            Err(unreadable())
        }
    }
}

/// The `<Code>` of an S3 error document.
fn error_code(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    Some(&text[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_and_error_codes() {
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let held = Held {
            learnt_at: at(100),
            learning: 0,
            value: (),
        };
        assert!(held.fresh(at(100)));
        assert!(held.fresh(at(104)));
        assert!(!held.fresh(at(105)));
        assert!(!held.fresh(at(99)), "a clock that went back");
        assert_eq!(
            error_code(b"<Error><Code>NoSuchBucket</Code><Message>m</Message></Error>"),
            Some("NoSuchBucket")
        );
        assert_eq!(error_code(b"<Error></Error>"), None);
    }
}
