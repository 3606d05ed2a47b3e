//! Fills in flight, and request collapsing: concurrent misses for one key wait on one origin
//! request, and every reader streams bytes while the fill is still running.
//!
//! A fill fetches one origin response (the whole body or a slice-aligned range of it) and cuts
//! the body into slices. It holds only the slice being received; finished slices go to the
//! cache tiers, where readers that fall behind find them. Rules:
//! - A miss joins a fill of the same key that has not yet received its head, or one of the same
//!   version whose unread part covers the position it needs; otherwise it starts one.
//! - A fill runs to the end even if the reader that started it goes away (others may wait,
//!   and the cache wants the body).
//! - Invalidation detaches matching fills: later requests start afresh, and a detached fill
//!   never stores its head.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use outpost_store::error::Code;

use super::Head;
use super::outcome::NotCacheable;

/// How a fill ended, as far as its readers care.
#[derive(Debug, Clone)]
pub enum Ended {
    /// The body was received (and stored, unless the fill was detached).
    Done,
    /// The origin confirmed the stored head (304); here is its renewal.
    NotModified(Arc<Head>),
    /// An answer that is not stored but small enough to hand to every waiting reader
    /// (errors such as 403 or 500).
    Passed(Arc<Passed>),
    /// An answer that is not stored (for this reason) and too large to share: each reader
    /// asks the origin itself.
    Bypass(NotCacheable),
    /// The origin could not be reached or broke off.
    Failed(Failure),
}

/// Why a fill failed: the reason for the log (it may name the origin) and the S3 error code
/// its readers' clients get.
#[derive(Debug, Clone)]
pub struct Failure {
    pub reason: String,
    pub code: Code,
}

impl Failure {
    /// A failure of the origin or of its answer: `503 ServiceUnavailable`.
    pub fn new(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            code: Code::ServiceUnavailable,
        }
    }
}

#[derive(Debug)]
pub struct Passed {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// Why it was not stored.
    pub reason: NotCacheable,
}

/// What a reader finds at a position.
pub enum At {
    /// Every byte received from the position on, in pieces.
    Data(Vec<Bytes>),
    /// The position lies in a slice the fill has finished: look in the cache.
    Behind,
    /// Not received yet.
    Wait,
    /// The fill ended before reaching the position.
    Ended(Ended),
}

/// Fills in flight, by cache key.
type Registry = Arc<Mutex<HashMap<String, Vec<Arc<Fill>>>>>;

pub struct Fills {
    inflight: Registry,
    /// The longest a reader waits without news from its fill (see [`Fills::new`]).
    max_wait: Duration,
}

/// A reader's part in a fill, as Pingora's `Locked::Write | Locked::Read`.
pub enum Role {
    /// The caller runs the fill; dropping the [`Leader`] without ending it (the task panicked
    /// or was cancelled) ends it in error, so no reader waits on it forever.
    Leader(Leader),
    /// Another caller runs it: wait on it.
    Follower(Arc<Fill>),
}

impl Role {
    /// The fill, whichever part the caller plays.
    pub fn fill(&self) -> Arc<Fill> {
        match self {
            Role::Leader(leader) => Arc::clone(&leader.fill),
            Role::Follower(fill) => Arc::clone(fill),
        }
    }
}

/// The right and duty to run a fill: its filling side, and a drop guard that ends it.
pub struct Leader {
    fill: Arc<Fill>,
    inflight: Registry,
    ended: bool,
}

impl std::ops::Deref for Leader {
    type Target = Fill;

    fn deref(&self) -> &Fill {
        &self.fill
    }
}

impl Leader {
    /// Ends the fill, unregisters it and wakes its readers.
    pub fn end(mut self, ended: Ended) {
        self.finish(ended);
    }

    fn finish(&mut self, ended: Ended) {
        self.ended = true;
        remove(&self.inflight, &self.fill);
        self.fill.state.lock().expect("fill lock").ended = Some(ended);
        self.fill.changed.send_replace(());
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if !self.ended {
            tracing::warn!(key = %self.fill.key.replace('\n', " "), "cache fill dropped before it ended");
            self.finish(Ended::Failed(Failure::new(
                "the fill stopped before it ended",
            )));
        }
    }
}

fn remove(inflight: &Registry, fill: &Arc<Fill>) {
    let mut inflight = inflight.lock().expect("fills lock");
    if let Some(list) = inflight.get_mut(&fill.key) {
        list.retain(|f| !Arc::ptr_eq(f, fill));
        if list.is_empty() {
            inflight.remove(&fill.key);
        }
    }
}

impl Fills {
    /// `max_wait`: the longest a healthy fill goes without news (its origin's timeouts); a
    /// reader waiting longer gives up with an error rather than hang.
    pub fn new(max_wait: Duration) -> Fills {
        Fills {
            inflight: Registry::default(),
            max_wait,
        }
    }

    /// A fill for `key` a reader can join: with `version` None, one fetching a new head;
    /// otherwise one of that version that will deliver `pos`.
    pub fn find(&self, key: &str, version: Option<u64>, pos: u64) -> Option<Arc<Fill>> {
        let inflight = self.inflight.lock().expect("fills lock");
        inflight
            .get(key)?
            .iter()
            .find(|f| f.can_serve(version, pos))
            .cloned()
    }

    /// The fill bringing a new head for `key`, joined if one runs, else registered with the
    /// caller as its leader. One lock for both, so concurrent misses cannot both start one.
    pub fn join_or_start(&self, key: &str, start: u64) -> Role {
        let mut inflight = self.inflight.lock().expect("fills lock");
        let list = inflight.entry(key.to_owned()).or_default();
        if let Some(fill) = list.iter().find(|f| f.can_serve(None, 0)) {
            return Role::Follower(Arc::clone(fill));
        }
        let fill = Fill::new(key, start, true, self.max_wait);
        list.push(Arc::clone(&fill));
        self.leader(fill)
    }

    /// The fill of `head`'s body that will deliver `pos`, joined if one runs; None when the
    /// slice at `pos` is in the cache after all (`cached`: a fill stores a slice before it
    /// moves past it, so asking here, after the fills, cannot miss both); else a fill of
    /// `range` (slice-aligned, covering `pos`) registered with the caller as its leader. The
    /// new fill knows its head from the start, so readers who come while it waits for the
    /// origin join it instead of fetching the same slices again. One lock for all three.
    pub fn join_or_start_slices(
        &self,
        key: &str,
        head: &Arc<Head>,
        pos: u64,
        cached: impl FnOnce() -> bool,
        range: impl FnOnce() -> std::ops::Range<u64>,
    ) -> Option<Role> {
        let mut inflight = self.inflight.lock().expect("fills lock");
        let list = inflight.entry(key.to_owned()).or_default();
        if let Some(fill) = list.iter().find(|f| f.can_serve(Some(head.version), pos)) {
            return Some(Role::Follower(Arc::clone(fill)));
        }
        if cached() {
            if list.is_empty() {
                inflight.remove(key);
            }
            return None;
        }
        // It stops where a running fill of the same body takes over.
        let mut range = range();
        for f in list.iter() {
            if let Some(next) = f.receiving(head.version)
                && next > range.start
            {
                range.end = range.end.min(next);
            }
        }
        let fill = Fill::new(key, range.start, false, self.max_wait);
        fill.set_head(Arc::clone(head), range.start, range.end);
        list.push(Arc::clone(&fill));
        Some(self.leader(fill))
    }

    fn leader(&self, fill: Arc<Fill>) -> Role {
        Role::Leader(Leader {
            fill,
            inflight: Arc::clone(&self.inflight),
            ended: false,
        })
    }

    /// Detaches every fill whose key matches.
    pub fn invalidate(&self, matches: impl Fn(&str) -> bool) {
        let mut inflight = self.inflight.lock().expect("fills lock");
        inflight.retain(|key, list| {
            if matches(key) {
                list.iter()
                    .for_each(|f| f.detached.store(true, Ordering::SeqCst));
                false
            } else {
                true
            }
        });
    }

    /// Number of fills in flight (metrics).
    pub fn len(&self) -> usize {
        self.inflight
            .lock()
            .expect("fills lock")
            .values()
            .map(Vec::len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct Fill {
    pub key: String,
    new_head: bool,
    state: Mutex<State>,
    changed: watch::Sender<()>,
    detached: AtomicBool,
    max_wait: Duration,
}

struct State {
    head: Option<Arc<Head>>,
    /// Body offset of the first byte in `buf` (the start of the slice being received).
    buf_start: u64,
    buf: Vec<Bytes>,
    /// Body offset up to which bytes have arrived.
    received: u64,
    /// Body offset this fill stops at (exclusive), once known.
    end: u64,
    ended: Option<Ended>,
}

impl Fill {
    /// `new_head`: the fill fetches a head (cold or revalidating) that readers without one
    /// may wait for; otherwise it fetches missing slices of a known head.
    fn new(key: &str, start: u64, new_head: bool, max_wait: Duration) -> Arc<Fill> {
        Arc::new(Fill {
            key: key.to_owned(),
            new_head,
            state: Mutex::new(State {
                head: None,
                buf_start: start,
                buf: Vec::new(),
                received: start,
                end: u64::MAX,
                ended: None,
            }),
            changed: watch::channel(()).0,
            detached: AtomicBool::new(false),
            max_wait,
        })
    }

    fn can_serve(&self, version: Option<u64>, pos: u64) -> bool {
        let s = self.state.lock().expect("fill lock");
        if s.ended.is_some() {
            return false;
        }
        match (&s.head, version) {
            // Also once the head has arrived: it may not be in the cache yet.
            (_, None) => self.new_head,
            (Some(h), Some(v)) => h.version == v && s.buf_start <= pos && pos < s.end,
            (None, Some(_)) => false,
        }
    }

    /// Where this fill of body `version` is receiving now (a slice boundary), unless it ended.
    fn receiving(&self, version: u64) -> Option<u64> {
        let s = self.state.lock().expect("fill lock");
        let same = s.head.as_ref().is_some_and(|h| h.version == version);
        (same && s.ended.is_none()).then_some(s.buf_start)
    }

    pub fn is_detached(&self) -> bool {
        self.detached.load(Ordering::SeqCst)
    }

    /// Waits until the head is known or the fill ended without one.
    pub async fn head(&self) -> Result<Arc<Head>, Ended> {
        let mut rx = self.changed.subscribe();
        loop {
            {
                let s = self.state.lock().expect("fill lock");
                if let Some(h) = &s.head {
                    return Ok(Arc::clone(h));
                }
                if let Some(e) = &s.ended {
                    return Err(e.clone());
                }
            }
            if !self.news(&mut rx).await {
                return Err(self.stalled());
            }
        }
    }

    /// Waits for the next change; false when none came within `max_wait`.
    async fn news(&self, rx: &mut watch::Receiver<()>) -> bool {
        // The sender lives in `self`, so `changed` fails only if it was dropped: cannot happen.
        tokio::time::timeout(self.max_wait, rx.changed())
            .await
            .is_ok()
    }

    fn stalled(&self) -> Ended {
        Ended::Failed(Failure::new(format!(
            "no news from the fill for {:?}",
            self.max_wait
        )))
    }

    /// Waits until something can be said about `pos`.
    pub async fn at(&self, pos: u64) -> At {
        let mut rx = self.changed.subscribe();
        loop {
            match self.peek(pos) {
                At::Wait => {
                    if !self.news(&mut rx).await {
                        return At::Ended(self.stalled());
                    }
                }
                other => return other,
            }
        }
    }

    fn peek(&self, pos: u64) -> At {
        let s = self.state.lock().expect("fill lock");
        if pos < s.buf_start {
            return At::Behind;
        }
        if pos < s.received {
            let mut offset = s.buf_start;
            let mut pieces = s.buf.iter();
            for piece in pieces.by_ref() {
                let piece_end = offset + piece.len() as u64;
                if pos < piece_end {
                    let mut data = vec![piece.slice((pos - offset) as usize..)];
                    data.extend(pieces.cloned());
                    return At::Data(data);
                }
                offset = piece_end;
            }
        }
        match &s.ended {
            Some(Ended::Done) if pos >= s.end => At::Behind,
            Some(e) => At::Ended(e.clone()),
            None => At::Wait,
        }
    }

    // ---- the filling side ----

    /// The origin answered: body bytes `start..end` of `head` will follow.
    pub fn set_head(&self, head: Arc<Head>, start: u64, end: u64) {
        let mut s = self.state.lock().expect("fill lock");
        s.head = Some(head);
        (s.buf_start, s.received, s.end) = (start, start, end);
        drop(s);
        self.changed.send_replace(());
    }

    /// More bytes arrived. One wake-up per batch: with a thousand readers waiting, a wake-up
    /// per network read would cost more than the bytes.
    pub fn push(&self, batch: Vec<Bytes>) {
        let mut s = self.state.lock().expect("fill lock");
        s.received += batch.iter().map(|b| b.len() as u64).sum::<u64>();
        s.buf.extend(batch);
        drop(s);
        self.changed.send_replace(());
    }

    /// The slice being received is complete and stored: drop it from memory.
    pub fn slice_stored(&self) {
        let mut s = self.state.lock().expect("fill lock");
        s.buf_start = s.received;
        s.buf.clear();
        drop(s);
        self.changed.send_replace(());
    }

    /// The body range this fill was started for (from its first byte to its end).
    pub fn planned(&self) -> std::ops::Range<u64> {
        let s = self.state.lock().expect("fill lock");
        s.buf_start..s.end
    }

    /// The received-but-unstored bytes, to assemble a slice.
    pub fn pending(&self) -> Vec<Bytes> {
        self.state.lock().expect("fill lock").buf.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn head(version: u64) -> Arc<Head> {
        Arc::new(Head {
            status: http::StatusCode::OK,
            headers: http::HeaderMap::new(),
            size: 10,
            freshness: crate::cache::policy::freshness(
                200,
                &http::HeaderMap::new(),
                &crate::config::Behavior::default(),
                SystemTime::now(),
            )
            .expect("200 is cacheable"),
            version,
        })
    }

    const WAIT: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn readers_join_and_follow_a_fill() {
        let fills = Fills::new(WAIT);
        let Role::Leader(fill) = fills.join_or_start("k", 0) else {
            panic!("the first miss leads");
        };
        assert!(matches!(fills.join_or_start("k", 0), Role::Follower(_)));
        assert!(fills.find("k", None, 0).is_some(), "cold readers join");
        let reader = {
            let fill = Arc::clone(&fill.fill);
            tokio::spawn(async move {
                let h = fill.head().await.ok().unwrap();
                let mut got = Vec::new();
                let mut pos = 0;
                while pos < h.size {
                    match fill.at(pos).await {
                        At::Data(pieces) => {
                            for b in pieces {
                                pos += b.len() as u64;
                                got.extend_from_slice(&b);
                            }
                        }
                        At::Behind | At::Ended(_) => break,
                        At::Wait => unreachable!(),
                    }
                }
                got
            })
        };
        fill.set_head(head(7), 0, 10);
        assert!(
            fills.find("k", None, 0).is_some(),
            "until it ends, even with its head"
        );
        let Some(Role::Leader(slices)) =
            fills.join_or_start_slices("k", &head(8), 0, || false, || 0..10)
        else {
            panic!("no fill of version 8 runs");
        };
        assert!(
            fills
                .join_or_start_slices("k", &head(8), 0, || unreachable!(), || 0..10)
                .is_some_and(|r| matches!(r, Role::Follower(_))),
            "a slice fill is joined before its origin answers"
        );
        assert!(
            Arc::ptr_eq(&fills.find("k", None, 0).unwrap(), &fill.fill),
            "a slice fill brings no new head"
        );
        slices.end(Ended::Done);
        assert!(fills.find("k", Some(7), 3).is_some());
        fill.push(vec![Bytes::from_static(b"hello")]);
        fill.push(vec![Bytes::from_static(b"world")]);
        assert_eq!(reader.await.unwrap(), b"helloworld");
        fill.slice_stored();
        assert!(matches!(fill.at(2).await, At::Behind));
        assert!(
            fills
                .join_or_start_slices("k", &head(7), 2, || true, || unreachable!())
                .is_none(),
            "a slice the fill has moved past is read from the cache"
        );
        fill.end(Ended::Done);
        assert!(fills.find("k", Some(7), 3).is_none());
        assert!(fills.is_empty());
    }

    #[tokio::test]
    async fn invalidation_detaches() {
        let fills = Fills::new(WAIT);
        let Role::Leader(fill) = fills.join_or_start("a\nb\nc", 0) else {
            panic!("the first miss leads");
        };
        fills.invalidate(|k| k.starts_with("a"));
        assert!(fill.is_detached());
        assert!(fills.find("a\nb\nc", None, 0).is_none());
        let follower = Arc::clone(&fill.fill);
        fill.end(Ended::Failed(Failure::new("x")));
        assert!(matches!(follower.head().await, Err(Ended::Failed(_))));
    }

    #[tokio::test]
    async fn a_fill_whose_task_panics_ends_its_readers_in_error() {
        let fills = Fills::new(WAIT);
        let Role::Leader(leader) = fills.join_or_start("k", 0) else {
            panic!("the first miss leads");
        };
        let Role::Follower(fill) = fills.join_or_start("k", 0) else {
            panic!("the second one follows");
        };
        let task = tokio::spawn(async move {
            leader.set_head(head(1), 0, 10);
            leader.push(vec![Bytes::from_static(b"hello")]);
            panic!("a bug in the fill");
        });
        assert!(task.await.unwrap_err().is_panic());
        assert!(
            matches!(fill.at(0).await, At::Data(_)),
            "what arrived is served"
        );
        assert!(matches!(fill.at(5).await, At::Ended(Ended::Failed(_))));
        assert!(fills.is_empty(), "the dropped fill is unregistered");
        assert!(matches!(fills.join_or_start("k", 0), Role::Leader(_)));
    }

    #[tokio::test]
    async fn a_dropped_fill_ends_its_waiting_readers_in_error() {
        let fills = Fills::new(WAIT);
        let Role::Leader(leader) = fills.join_or_start("k", 0) else {
            panic!("the first miss leads");
        };
        let fill = Arc::clone(&leader.fill);
        let waiting = tokio::spawn(async move { fill.head().await });
        // Cancelled before the origin answered: the task (and its leader) is dropped.
        let task = tokio::spawn(async move {
            let _leader = leader;
            std::future::pending::<()>().await
        });
        tokio::task::yield_now().await;
        task.abort();
        let ended = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the reader is released, not left waiting");
        assert!(matches!(ended.unwrap(), Err(Ended::Failed(_))));
        assert!(fills.is_empty());
    }

    #[tokio::test]
    async fn a_reader_waits_for_news_no_longer_than_the_bound() {
        let fills = Fills::new(Duration::from_millis(50));
        let Role::Leader(leader) = fills.join_or_start("k", 0) else {
            panic!("the first miss leads");
        };
        // A fill that hangs (its origin neither answers nor fails): readers give up.
        assert!(matches!(leader.head().await, Err(Ended::Failed(_))));
        leader.set_head(head(1), 0, 10);
        assert!(matches!(leader.at(0).await, At::Ended(Ended::Failed(_))));
    }
}
