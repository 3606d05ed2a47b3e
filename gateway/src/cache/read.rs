//! Serving from the cache: finding (or fetching) the head for a key, running fills, and
//! streaming a byte range from slices and fills.

use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http_body_util::BodyExt;

use super::collapse::{At, Ended, Failure, Fill, Leader, Passed, Role};
use super::outcome::{CacheOutcome, NotCacheable};
use super::policy::{self, State};
use super::{Cache, Head, SliceId};
use crate::config::Behavior;
use crate::origin::{OriginBody, OriginGroup, OriginRequest};
use outpost_store::engine::ByteStream;
use outpost_store::error::{Code, Error};

/// Uncacheable answers up to this size are shared with every waiting reader; larger ones
/// make each reader ask the origin itself.
const PASS_LIMIT: u64 = 256 * 1024;
/// Cached bodies are handed out in pieces of at most this size.
const READ_CHUNK: u64 = 1 << 20;
/// Readers following a fill are woken once per this many bytes (and at each slice's end).
const PUSH_BATCH: usize = 128 * 1024;

/// Where a key's content comes from: the origin request for the whole object (GET, without
/// range or conditional headers) and the behaviour that decides freshness.
pub struct Source {
    pub origin: Arc<OriginGroup>,
    pub request: OriginRequest,
    pub behavior: Arc<Behavior>,
}

/// What a lookup found.
pub enum Found {
    Head(Arc<Head>, CacheOutcome),
    /// Not cacheable but shared with this reader (small error answers).
    Passed(Arc<Passed>),
    /// Not cacheable: ask the origin directly.
    Bypass(NotCacheable),
    /// No origin answered and nothing usable is stored.
    Failed(Failure),
}

/// Finds the head for `key`: fresh from the cache, revalidated, served stale, or fetched.
/// `range` (the client's byte range, when it asks for one) lets a cold fill of a large
/// object fetch only the slices that range needs. `source` is only asked for when the origin
/// is (a hit needs none).
pub async fn lookup<'s>(
    cache: &Arc<Cache>,
    origins: &OriginGroup,
    source: impl Fn() -> &'s Arc<Source>,
    key: &str,
    range: Option<Range<u64>>,
) -> Found {
    let now = cache.clock.now();
    let Some(stored) = cache.head(key).await else {
        let fill = join_or_start(cache, source(), key, FillKind::Cold(range));
        return match fill.head().await {
            Ok(head) => Found::Head(head, CacheOutcome::Miss),
            Err(ended) => found_without_head(ended, None, now),
        };
    };
    let mut state = stored.freshness.state(now);
    if state == State::Fresh && cache.revalidation_marked(&stored, origins) {
        state = State::Expired;
    }
    match state {
        State::Fresh => Found::Head(stored, CacheOutcome::Hit),
        State::StaleWhileRevalidate => {
            join_or_start(
                cache,
                source(),
                key,
                FillKind::Revalidate(Arc::clone(&stored)),
            );
            Found::Head(stored, CacheOutcome::Stale)
        }
        State::StaleIfError | State::Expired => {
            let fill = join_or_start(
                cache,
                source(),
                key,
                FillKind::Revalidate(Arc::clone(&stored)),
            );
            match fill.head().await {
                Ok(head) => Found::Head(head, CacheOutcome::Miss),
                Err(ended) => found_without_head(ended, Some(stored), now),
            }
        }
    }
}

fn found_without_head(ended: Ended, stale: Option<Arc<Head>>, now: SystemTime) -> Found {
    // A fresh entry is revalidated only when marked (its feed missed events, or could not
    // catch up after a restart): should its origin fail, it is served as its TTL allows.
    let usable_stale =
        stale.filter(|h| matches!(h.freshness.state(now), State::StaleIfError | State::Fresh));
    match (ended, usable_stale) {
        (Ended::NotModified(head), _) => Found::Head(head, CacheOutcome::RefreshHit),
        (Ended::Failed(_), Some(h)) => Found::Head(h, CacheOutcome::Stale),
        (Ended::Passed(p), Some(h)) if p.status.is_server_error() => {
            Found::Head(h, CacheOutcome::Stale)
        }
        (Ended::Failed(e), None) => Found::Failed(e),
        (Ended::Passed(p), _) => Found::Passed(p),
        (Ended::Bypass(reason), _) => Found::Bypass(reason),
        (Ended::Done, _) => Found::Failed(Failure::new("fill ended without a head")),
    }
}

fn join_or_start(cache: &Arc<Cache>, source: &Arc<Source>, key: &str, kind: FillKind) -> Arc<Fill> {
    let start = match &kind {
        FillKind::Cold(Some(r)) => r.start / cache.slice_bytes * cache.slice_bytes,
        _ => 0,
    };
    let role = cache.fills.join_or_start(key, start);
    let fill = role.fill();
    if let Role::Leader(leader) = role {
        tokio::spawn(run_fill(
            Arc::clone(cache),
            Arc::clone(source),
            leader,
            kind,
        ));
    }
    fill
}

enum FillKind {
    /// Nothing stored: the whole body, or the slices covering the client's range.
    Cold(Option<Range<u64>>),
    /// The stored head expired: ask with its validators.
    Revalidate(Arc<Head>),
    /// Slices `range` of a stored head's body are missing.
    Slices(Arc<Head>, Range<u64>),
}

/// Runs a fill to its end. Should it panic, dropping `fill` ends it in error for its readers.
async fn run_fill(cache: Arc<Cache>, source: Arc<Source>, fill: Leader, mut kind: FillKind) {
    let ended = loop {
        match fill_once(&cache, &source, &fill, &kind).await {
            // A cold ranged fill past the end (or of an empty object): fetch it whole.
            Err(FillError::RangeNotSatisfiable) => kind = FillKind::Cold(None),
            Err(FillError::Ended(ended)) => break ended,
            Ok(()) => break Ended::Done,
        }
    };
    if let Ended::Failed(failure) = &ended {
        let reason = &failure.reason;
        tracing::warn!(key = %fill.key.replace('\n', " "), %reason, "cache fill failed");
    }
    fill.end(ended);
}

enum FillError {
    RangeNotSatisfiable,
    Ended(Ended),
}

impl From<Ended> for FillError {
    fn from(e: Ended) -> Self {
        FillError::Ended(e)
    }
}

async fn fill_once(
    cache: &Cache,
    source: &Source,
    fill: &Fill,
    kind: &FillKind,
) -> Result<(), FillError> {
    let slice = cache.slice_bytes;
    let mut request = source.request.clone();
    let h = &mut request.headers;
    match kind {
        FillKind::Cold(None) => {}
        FillKind::Cold(Some(r)) => {
            let first = r.start / slice * slice;
            let last = r.end.div_ceil(slice) * slice;
            h.insert(http::header::RANGE, range_header(first..last));
        }
        FillKind::Revalidate(stored) => h.extend(policy::revalidation_headers(&stored.headers)),
        FillKind::Slices(stored, r) => {
            h.insert(http::header::RANGE, range_header(r.clone()));
            if let Some(etag) = stored.headers.get(http::header::ETAG) {
                h.insert(http::header::IF_MATCH, etag.clone());
            }
        }
    }
    let response = source.origin.fetch(&request).await.map_err(|e| {
        Ended::Failed(Failure {
            code: e.code(),
            reason: e.to_string(),
        })
    })?;
    let now = cache.clock.now();
    let status = response.status();
    let (parts, body) = response.into_parts();
    let headers = end_to_end(&parts.headers);
    let stored = match kind {
        FillKind::Revalidate(h) | FillKind::Slices(h, _) => Some(h),
        FillKind::Cold(_) => None,
    };
    match (status.as_u16(), kind) {
        (304, FillKind::Revalidate(h)) => {
            let renewed = Arc::new(Head {
                status: h.status,
                // The 304's own Date and Age date the renewal.
                freshness: h
                    .freshness
                    .renewed(&h.headers, &parts.headers, &source.behavior, now),
                headers: policy::updated_headers(&h.headers, &headers),
                size: h.size,
                version: h.version,
            });
            if !fill.is_detached() {
                cache.put_head(&fill.key, Arc::clone(&renewed)).await;
            }
            return Err(Ended::NotModified(renewed).into());
        }
        (416, FillKind::Cold(Some(_))) => return Err(FillError::RangeNotSatisfiable),
        (412, FillKind::Slices(..)) => {
            // The object changed under a stored head: forget the head, readers start over.
            cache.remove_head(&fill.key).await;
            return Err(Ended::Failed(Failure::new("object changed during a slice fill")).into());
        }
        _ => {}
    }
    let (start, size) = match status.as_u16() {
        206 => parse_content_range(&parts.headers)
            .ok_or_else(|| Ended::Failed(Failure::new("206 without a usable Content-Range")))?,
        _ => (0, content_length(&parts.headers).unwrap_or(u64::MAX)),
    };
    let delivered = content_length(&parts.headers).unwrap_or(u64::MAX);
    let end = start.saturating_add(delivered).min(size);
    // A 206 is our own slicing of a 200.
    let policy_status = if status.as_u16() == 206 {
        200
    } else {
        status.as_u16()
    };
    let head = match (stored, kind) {
        (Some(h), FillKind::Slices(..)) => Arc::clone(h),
        // Freshness reads the origin's Date and Age, which are not stored.
        _ => match policy::freshness(policy_status, &parts.headers, &source.behavior, now) {
            Ok(freshness) if size != u64::MAX => Arc::new(Head {
                status: http::StatusCode::from_u16(policy_status).unwrap_or(status),
                headers,
                size,
                freshness,
                version: rand::random(),
            }),
            not_stored => {
                let reason = not_stored.err().unwrap_or(NotCacheable::UnknownLength);
                let passed = pass(status, headers, delivered, start, body, reason).await;
                return Err(passed.into());
            }
        },
    };
    // The fill knows its head before the cache does, so a reader that finds the head in the
    // cache always finds the fill that is bringing its body.
    fill.set_head(Arc::clone(&head), start, end);
    if !matches!(kind, FillKind::Slices(..)) && !fill.is_detached() {
        cache.put_head(&fill.key, Arc::clone(&head)).await;
    }
    pump(cache, fill, &head, body, start, end).await
}

/// Streams the origin body into the fill, storing each slice as it completes.
async fn pump(
    cache: &Cache,
    fill: &Fill,
    head: &Head,
    mut body: OriginBody,
    start: u64,
    end: u64,
) -> Result<(), FillError> {
    let slice = cache.slice_bytes;
    let mut pos = start;
    let mut slice_end = (pos / slice + 1) * slice;
    // Pieces received but not yet shown to readers (see `Fill::push`).
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    while pos < end {
        // The body fails on its own when the origin stalls (`origin_idle_timeout_secs`).
        let frame = match body.frame().await {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                return Err(Ended::Failed(Failure::new(format!("origin body: {e}"))).into());
            }
            None => break,
        };
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        while !data.is_empty() {
            let take = data.len().min((slice_end.min(end) - pos) as usize);
            batch.push(data.split_to(take));
            batch_bytes += take;
            pos += take as u64;
            let slice_done = pos == slice_end.min(end);
            if slice_done || batch_bytes >= PUSH_BATCH {
                fill.push(std::mem::take(&mut batch));
                batch_bytes = 0;
            }
            if slice_done {
                let id = SliceId {
                    version: head.version,
                    index: (pos - 1) / slice,
                };
                cache.put_slice(id, head.size, concat(fill.pending())).await;
                fill.slice_stored();
                slice_end += slice;
            }
            if pos >= end {
                break;
            }
        }
    }
    if pos < end {
        return Err(
            Ended::Failed(Failure::new(format!("origin body ended at {pos} of {end}"))).into(),
        );
    }
    Ok(())
}

/// An answer that is not stored: small ones are shared with every waiting reader. A 206 is
/// the slices the fill asked for, not what any reader asked: each reader asks the origin
/// itself (Bypass), with its own Range and conditions.
async fn pass(
    status: http::StatusCode,
    headers: http::HeaderMap,
    length: u64,
    start: u64,
    body: OriginBody,
    reason: NotCacheable,
) -> Ended {
    if length > PASS_LIMIT || start != 0 || status == http::StatusCode::PARTIAL_CONTENT {
        return Ended::Bypass(reason);
    }
    match body.collect().await {
        Ok(collected) => Ended::Passed(Arc::new(Passed {
            status,
            headers,
            body: collected.to_bytes(),
            reason,
        })),
        _ => Ended::Failed(Failure::new("origin body of an uncacheable answer failed")),
    }
}

fn concat(pieces: Vec<Bytes>) -> Bytes {
    if pieces.len() == 1 {
        return pieces.into_iter().next().expect("one piece");
    }
    let mut all = BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
    pieces.iter().for_each(|p| all.extend_from_slice(p));
    all.freeze()
}

/// The stream of body bytes `range` of `head`, from slices and fills, fetching missing
/// slices (and at most a few times: an origin that keeps failing ends the stream in error).
pub fn body(
    cache: Arc<Cache>,
    source: Arc<Source>,
    key: String,
    head: Arc<Head>,
    range: Range<u64>,
) -> ByteStream {
    let reader = Reader {
        cache,
        source,
        key,
        head,
        pos: range.start,
        end: range.end,
        ready: Default::default(),
    };
    futures::stream::unfold(reader, |mut r| async move {
        if r.pos >= r.end {
            return None;
        }
        match r.next().await {
            Ok(data) => Some((Ok(data), r)),
            Err(e) => {
                r.pos = r.end;
                Some((Err(e), r))
            }
        }
    })
    .boxed()
}

struct Reader {
    cache: Arc<Cache>,
    source: Arc<Source>,
    key: String,
    head: Arc<Head>,
    pos: u64,
    end: u64,
    /// Pieces taken from a fill and not yet handed out.
    ready: std::collections::VecDeque<Bytes>,
}

impl Reader {
    async fn next(&mut self) -> Result<Bytes, Error> {
        if let Some(data) = self.ready.pop_front() {
            return Ok(self.advance(data));
        }
        let slice = self.cache.slice_bytes;
        for _attempt in 0..4 {
            let index = self.pos / slice;
            let id = SliceId {
                version: self.head.version,
                index,
            };
            let offset = self.pos - index * slice;
            let len = (self.end - self.pos).min(slice - offset).min(READ_CHUNK) as usize;
            if let Some(data) = self.cache.slice_part(id, self.head.size, offset, len).await {
                return Ok(self.advance(data));
            }
            let Some(fill) = self.join_or_start_slice_fill(index) else {
                continue; // stored meanwhile: read it from the cache
            };
            loop {
                match fill.at(self.pos).await {
                    At::Data(pieces) => {
                        self.ready.extend(pieces);
                        let first = self.ready.pop_front().expect("a fill hands out data");
                        return Ok(self.advance(first));
                    }
                    At::Behind | At::Ended(Ended::Done) => break,
                    At::Ended(Ended::Failed(failure)) => {
                        // The origin failed this very read (stalled, broke off): asking it again
                        // at once would keep the client waiting a timeout per attempt.
                        let reason = &failure.reason;
                        tracing::warn!(key = %self.key.replace('\n', " "), %reason, "fill failed under a reader");
                        return Err(crate::origin::client_error(failure.code));
                    }
                    At::Ended(e) => {
                        tracing::warn!(key = %self.key.replace('\n', " "), ended = ?e, "fill ended under a reader");
                        break;
                    }
                    At::Wait => continue,
                }
            }
        }
        Err(Error::msg(
            Code::ServiceUnavailable,
            "The origin did not deliver this object.",
        ))
    }

    /// Hands out `data` (cut at the end of the range) and moves past it.
    fn advance(&mut self, mut data: Bytes) -> Bytes {
        let take = data.len().min((self.end - self.pos) as usize);
        data.truncate(take);
        self.pos += take as u64;
        if self.pos >= self.end {
            self.ready.clear();
        }
        data
    }

    /// The fill that brings the slice at `index`: one running, or one started for the slices
    /// from `index` up to the next one already cached or the end of what this reader needs;
    /// None when the slice is in the cache after all.
    fn join_or_start_slice_fill(&self, index: u64) -> Option<Arc<Fill>> {
        let slice = self.cache.slice_bytes;
        let version = self.head.version;
        let cached = |i| {
            self.cache
                .has_slice(SliceId { version, index: i }, self.head.size)
        };
        let range = || {
            let last = self.end.div_ceil(slice);
            let stop = (index + 1..last).find(|&i| cached(i)).unwrap_or(last);
            index * slice..(stop * slice).min(self.head.size)
        };
        let role = self.cache.fills.join_or_start_slices(
            &self.key,
            &self.head,
            self.pos,
            || cached(index),
            range,
        )?;
        let fill = role.fill();
        if let Role::Leader(leader) = role {
            let range = leader.planned();
            tokio::spawn(run_fill(
                Arc::clone(&self.cache),
                Arc::clone(&self.source),
                leader,
                FillKind::Slices(Arc::clone(&self.head), range),
            ));
        }
        Some(fill)
    }
}

fn range_header(r: Range<u64>) -> http::HeaderValue {
    http::HeaderValue::from_str(&format!("bytes={}-{}", r.start, r.end - 1))
        .expect("digits are a valid header value")
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// `bytes 0-99/1000` → (0, 1000).
fn parse_content_range(headers: &http::HeaderMap) -> Option<(u64, u64)> {
    let v = headers.get(http::header::CONTENT_RANGE)?.to_str().ok()?;
    let (range, size) = v.strip_prefix("bytes ")?.split_once('/')?;
    Some((range.split_once('-')?.0.parse().ok()?, size.parse().ok()?))
}

/// Origin headers worth storing and replaying: not framing, not per-hop. The origin's
/// request id stays: it names the request whose answer this is (and matches an error body).
pub fn end_to_end(headers: &http::HeaderMap) -> http::HeaderMap {
    const DROP: &[&str] = &[
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-range",
        "date",
        "server",
        "age",
    ];
    let mut out = headers.clone();
    for name in DROP {
        out.remove(*name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_and_concat() {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::CONTENT_RANGE, "bytes 4-7/10".parse().unwrap());
        assert_eq!(parse_content_range(&h), Some((4, 10)));
        assert_eq!(
            concat(vec![Bytes::from_static(b"ab"), Bytes::from_static(b"c")]),
            Bytes::from_static(b"abc")
        );
        assert_eq!(range_header(0..4), "bytes=0-3");
    }
}
