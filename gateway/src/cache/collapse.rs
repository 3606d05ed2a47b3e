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

use bytes::Bytes;
use tokio::sync::watch;

use outpost_store::error::Code;

use super::Head;

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
    /// An answer that is not stored and too large to share: each reader asks the origin itself.
    Bypass,
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

#[derive(Default)]
pub struct Fills {
    inflight: Mutex<HashMap<String, Vec<Arc<Fill>>>>,
}

impl Fills {
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

    /// The fill bringing a new head for `key`, joined if one runs, else registered (`true`:
    /// the caller must run it). One lock for both, so concurrent misses cannot both start one.
    pub fn join_or_start(&self, key: &str, start: u64) -> (Arc<Fill>, bool) {
        let mut inflight = self.inflight.lock().expect("fills lock");
        let list = inflight.entry(key.to_owned()).or_default();
        if let Some(fill) = list.iter().find(|f| f.can_serve(None, 0)) {
            return (Arc::clone(fill), false);
        }
        let fill = Fill::new(key, start, true);
        list.push(Arc::clone(&fill));
        (fill, true)
    }

    /// Registers a fill of missing slices of a known head, from `start` (a slice boundary).
    pub fn start(&self, key: &str, start: u64) -> Arc<Fill> {
        let fill = Fill::new(key, start, false);
        let mut inflight = self.inflight.lock().expect("fills lock");
        inflight
            .entry(key.to_owned())
            .or_default()
            .push(Arc::clone(&fill));
        fill
    }

    fn remove(&self, fill: &Arc<Fill>) {
        let mut inflight = self.inflight.lock().expect("fills lock");
        if let Some(list) = inflight.get_mut(&fill.key) {
            list.retain(|f| !Arc::ptr_eq(f, fill));
            if list.is_empty() {
                inflight.remove(&fill.key);
            }
        }
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
    fn new(key: &str, start: u64, new_head: bool) -> Arc<Fill> {
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
            // The sender lives in `self`, so this only fails if it was dropped: cannot happen.
            let _ = rx.changed().await;
        }
    }

    /// Waits until something can be said about `pos`.
    pub async fn at(&self, pos: u64) -> At {
        let mut rx = self.changed.subscribe();
        loop {
            match self.peek(pos) {
                At::Wait => {
                    let _ = rx.changed().await;
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

    /// The received-but-unstored bytes, to assemble a slice.
    pub fn pending(&self) -> Vec<Bytes> {
        self.state.lock().expect("fill lock").buf.clone()
    }

    /// Ends the fill and unregisters it.
    pub fn end(self: &Arc<Self>, fills: &Fills, ended: Ended) {
        fills.remove(self);
        self.state.lock().expect("fill lock").ended = Some(ended);
        self.changed.send_replace(());
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

    #[tokio::test]
    async fn readers_join_and_follow_a_fill() {
        let fills = Fills::default();
        let (fill, started) = fills.join_or_start("k", 0);
        assert!(started);
        assert!(fills.find("k", None, 0).is_some(), "cold readers join");
        let reader = {
            let fill = Arc::clone(&fill);
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
        let slices = fills.start("k", 0);
        assert!(
            Arc::ptr_eq(&fills.find("k", None, 0).unwrap(), &fill),
            "a slice fill brings no new head"
        );
        slices.end(&fills, Ended::Done);
        assert!(fills.find("k", Some(7), 3).is_some());
        fill.push(vec![Bytes::from_static(b"hello")]);
        fill.push(vec![Bytes::from_static(b"world")]);
        assert_eq!(reader.await.unwrap(), b"helloworld");
        fill.slice_stored();
        assert!(matches!(fill.at(2).await, At::Behind));
        fill.end(&fills, Ended::Done);
        assert!(fills.find("k", Some(7), 3).is_none());
        assert!(fills.is_empty());
    }

    #[tokio::test]
    async fn invalidation_detaches() {
        let fills = Fills::default();
        let (fill, _) = fills.join_or_start("a\nb\nc", 0);
        fills.invalidate(|k| k.starts_with("a"));
        assert!(fill.is_detached());
        assert!(fills.find("a\nb\nc", None, 0).is_none());
        fill.end(&fills, Ended::Failed(Failure::new("x")));
        assert!(matches!(fill.head().await, Err(Ended::Failed(_))));
    }
}
