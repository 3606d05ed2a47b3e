//! CORS at the edge. A bucket's rules are learnt from its origin (GetBucketCors, signed with
//! the edge's key) and kept until the end of the [`TTL_SECS`] window of the cache clock they
//! were learnt in, "no configuration" and "no such bucket" too: a change at the store is seen
//! at every edge within that bound. Preflight answers are kept per (bucket, Origin, method,
//! request headers) in the same window, so none outlives the rules it came from. Answers that
//! failed (origin unreachable) are not kept.
//!
//! Matching and the headers themselves are the kit's ([`outpost_store::s3::cors`]), as at the
//! store.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use outpost_store::error::{Code, Error, Result};
use outpost_store::s3::cors::{CorsConfiguration, Preflight, PreflightRequest};

use crate::origin::{self, OriginError, OriginGroup, OriginRequest};

/// How long, at most, the edge answers by rules the store has since changed.
pub const TTL_SECS: u64 = 5;
/// Buckets (and preflight variants) held at once.
const CAPACITY: u64 = 10_000;
/// S3 takes CORS documents of up to 64 KB; the store writes them back no larger.
const MAX_DOCUMENT: usize = 128 << 10;

/// What the origin said of a bucket's CORS: its rules, none, or no such bucket.
type Learnt = std::result::Result<Option<Arc<CorsConfiguration>>, Code>;

/// Where a request's rules come from: an origin group, a bucket there, and a scope keeping
/// apart the same bucket behind different origin groups (the S3 face, each site).
pub struct Source<'a> {
    pub scope: &'a str,
    pub origins: &'a OriginGroup,
    pub bucket: &'a str,
}

pub struct Cors {
    rules: moka::future::Cache<(String, String, u64), Learnt>,
    preflights: moka::future::Cache<(String, String, u64, PreflightRequest), Preflight>,
}

impl Default for Cors {
    fn default() -> Self {
        // Entries are read only within their window; real time just evicts them after it.
        let lifetime = std::time::Duration::from_secs(2 * TTL_SECS);
        Cors {
            rules: moka::future::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(lifetime)
                .build(),
            preflights: moka::future::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(lifetime)
                .build(),
        }
    }
}

impl Cors {
    /// The bucket's rules as the origin last said them in this window (concurrent misses
    /// share one origin request).
    pub async fn rules(
        &self,
        source: &Source<'_>,
        now: SystemTime,
    ) -> Result<Option<Arc<CorsConfiguration>>> {
        let key = (
            source.scope.to_owned(),
            source.bucket.to_owned(),
            window(now),
        );
        let learnt = self
            .rules
            .try_get_with(key, learn(source.origins, source.bucket))
            .await
            .map_err(|e| Error::msg(e.code, e.message().to_owned()))?;
        learnt.map_err(Error::new)
    }

    /// The answer to `asked`, kept for the window; a kept answer that allows says so with
    /// `X-Cache: Hit` (`Miss` when just worked out).
    pub async fn preflight(
        &self,
        source: &Source<'_>,
        asked: &PreflightRequest,
        now: SystemTime,
    ) -> Result<Preflight> {
        let key = (
            source.scope.to_owned(),
            source.bucket.to_owned(),
            window(now),
            asked.clone(),
        );
        let (mut answer, outcome) = match self.preflights.get(&key).await {
            Some(kept) => (kept, "Hit"),
            None => {
                let rules = self.rules(source, now).await?;
                let answer = Preflight::answer(rules.as_deref(), asked);
                self.preflights.insert(key, answer.clone()).await;
                (answer, "Miss")
            }
        };
        if let Preflight::Allowed(headers) = &mut answer {
            headers.insert("x-cache", HeaderValue::from_static(outcome));
        }
        Ok(answer)
    }
}

/// The window of the cache clock `now` falls in.
fn window(now: SystemTime) -> u64 {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    secs / TTL_SECS
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
    fn windows_and_error_codes() {
        let at = |secs| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        assert_eq!(window(at(0)), window(at(TTL_SECS - 1)));
        assert_ne!(window(at(TTL_SECS - 1)), window(at(TTL_SECS)));
        assert_eq!(
            error_code(b"<Error><Code>NoSuchBucket</Code><Message>m</Message></Error>"),
            Some("NoSuchBucket")
        );
        assert_eq!(error_code(b"<Error></Error>"), None);
    }
}
