//! Following the change feed of every origin that is an Outpost store, so the edge drops
//! exactly what changed there, within a moment of its commit, whatever the TTLs say.
//!
//! ```text
//!  one follower per origin URL (S3 face's group first, then each site's):
//!    GET /_outpost/changes?after=LAST  (signed with the group's key, that origin alone)
//!      200 NDJSON ─► hello: another store id than before, or no position yet ─► resync
//!                 ─► event seq = LAST+1 ─► apply, LAST = seq      (seq ≤ LAST: seen, skipped)
//!                 ─► event past LAST+1, a line that does not parse ─► resync, reconnect
//!      410 gone   ─► resync, LAST = the store's last
//!      404/400/405/501 (not a store) ─► ask again in a minute; anything else ─► backoff
//!  resync: every entry of every group holding that origin is revalidated before its next
//!          hit (a 304 keeps the body); nothing is flushed
//! ```
//!
//! Each connection confirms to the store the numbers it applied ([`applied`]), for the
//! report of `outpost invalidate`.
//!
//! A restart keeps the disk tier (`cache/records.rs`) and, beside it, each follower's place:
//! the store id, the last sequence applied and the time of its last resync, saved about
//! every [`SAVE_EVERY`] while it moves ([`keep_saving`]). Before
//! an edge that restored entries serves its first client, each follower resumes from its
//! saved place and applies what happened meanwhile ([`start`]); a follower that cannot within
//! [`CATCH_UP_WAIT`] (the store is unreachable or slow) has its groups' entries marked for
//! revalidation instead, as a resync would: the edge promises freshness to clients only while
//! it hears from the store. A marked entry the store cannot revalidate is still served within
//! its TTL and stale-if-error grace, as an edge without a feed would serve it.
//!
//! Applying an event ([`apply`]) drops, across the whole cache, the entries it names: an
//! object's put or delete drops every entry of that bucket and key older than the event's
//! commit (the store's `x-outpost-seq` on each answer says which commit wrote it; both faces,
//! signed and anonymous, every site, every query and header variant; slices and compressed
//! bodies go with their head), and no older answer is stored after it; a bucket created or
//! deleted drops the bucket's; a policy or Public Access Block change drops the bucket's
//! anonymous entries on the S3 face (sites fetch with the edge's key); a website change drops
//! the bucket's website configuration entries; a CORS change forgets the bucket's CORS rules
//! and drops its entries (their `Vary` is the rules'); an invalidation drops its paths. Key
//! and grant changes hold nothing cached here. A line is parsed whole before anything of it
//! is applied.

mod applied;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use outpost_store::engine::{ChangeKind, Event};
use outpost_store::feed::{CHANGES_PATH, Line};

use crate::cache::records::FeedPosition;
use crate::edge::{ANONYMOUS, Edge};
use crate::metrics::{KindLabel, OriginLabel};
use crate::origin::{OriginGroup, OriginRequest};

/// First wait before reconnecting a feed that broke; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often an origin that is not a store (or refuses this edge) is asked again.
const NOT_FOLLOWED_RETRY: Duration = Duration::from_secs(60);
/// A line longer than this is garbage (an invalidation of 3,000 long paths fits).
const MAX_LINE: usize = 8 << 20;
/// The largest "gone" answer read.
const MAX_GONE: usize = 64 << 10;
/// A follower's place is saved at most this often (a restart replays at most the events of
/// about this long, which drops a little more than needed, never too little).
const SAVE_EVERY: Duration = Duration::from_millis(500);
/// How long a restarted edge that restored entries waits for its followers to catch up
/// before it serves (the first access-document poll waits as long, at the same time).
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(3);

/// One origin followed: the URL at `index` of `group`, and every group that holds it (whose
/// entries a resync marks).
pub struct Followed {
    pub url: String,
    group: Arc<OriginGroup>,
    index: usize,
    groups: Vec<Arc<OriginGroup>>,
}

/// Every origin URL of the edge's groups, once each.
pub fn followed(edge: &Edge) -> Vec<Followed> {
    let mut out: Vec<Followed> = Vec::new();
    let groups = std::iter::once(&edge.origins).chain(edge.sites.origin_groups());
    for group in groups {
        for (index, (url, _)) in group.health().into_iter().enumerate() {
            match out.iter_mut().find(|f| f.url == url) {
                Some(f) if f.groups.iter().any(|g| Arc::ptr_eq(g, group)) => {}
                Some(f) => f.groups.push(Arc::clone(group)),
                None => out.push(Followed {
                    url,
                    group: Arc::clone(group),
                    index,
                    groups: vec![Arc::clone(group)],
                }),
            }
        }
    }
    out
}

/// Starts following every origin's feed, each from its saved place, for as long as the
/// edge runs (the task returned). When the cache restored entries from an earlier run, waits
/// up to [`CATCH_UP_WAIT`] until each follower has caught up with its store (or learnt that
/// it missed events, or that its origin has no feed); the groups of a follower still behind
/// then have their entries marked for revalidation (see the module documentation).
pub async fn start(edge: Arc<Edge>) -> tokio::task::JoinHandle<()> {
    let mut behind = Vec::new();
    let followers: Vec<_> = followed(&edge)
        .into_iter()
        .enumerate()
        .map(|(n, followed)| {
            let saved = edge.cache.records.feed_position(&followed.url);
            let position = Position::saved(saved.clone());
            if position.revalidate_before_ms > 0 {
                let at =
                    SystemTime::UNIX_EPOCH + Duration::from_millis(position.revalidate_before_ms);
                let mark = |g: &Arc<OriginGroup>| edge.cache.mark_received_before(g, at);
                followed.groups.iter().for_each(mark);
            }
            let (settled, caught_up) = tokio::sync::oneshot::channel();
            behind.push((caught_up, followed.groups.clone()));
            let (place, moves) = tokio::sync::watch::channel(saved);
            let progress = Progress {
                url: followed.url.clone(),
                settled: Some(settled),
                place,
            };
            let follower = follow(Arc::clone(&edge), n, followed, position, progress);
            futures::future::join(follower, keep_saving(Arc::clone(&edge), n, moves))
        })
        .collect();
    let task = tokio::spawn(futures::future::join_all(followers).map(drop));
    if edge.cache.restored() {
        let deadline = tokio::time::Instant::now() + CATCH_UP_WAIT;
        for (caught_up, groups) in behind {
            if !matches!(
                tokio::time::timeout_at(deadline, caught_up).await,
                Ok(Ok(()))
            ) {
                tracing::warn!(
                    "a change feed did not catch up in time: the entries restored from its origin will be revalidated"
                );
                groups
                    .iter()
                    .for_each(|g| edge.cache.mark_for_revalidation(g));
            }
        }
    }
    task
}

/// Where a follower stands in its origin's feed.
#[derive(Debug, Default)]
struct Position {
    store_id: Option<String>,
    /// The last sequence number applied (None: not connected yet).
    last: Option<u64>,
    /// The store's last number when this connection opened: applied up to it, the follower
    /// has caught up.
    target: Option<u64>,
    /// When the entries from this origin were last marked for revalidation (ms since the
    /// epoch, by the cache clock; 0: never).
    revalidate_before_ms: u64,
}

/// What one line asks of the follower.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Apply(Event),
    Nothing,
    /// A keep-alive: everything the store committed has been applied.
    CaughtUp,
    /// Events were missed (or the data replaced): revalidate everything from this origin.
    Resync,
}

impl Position {
    /// The place saved by an earlier run, if any.
    fn saved(saved: Option<FeedPosition>) -> Position {
        match saved {
            Some(saved) => Position {
                store_id: Some(saved.store_id),
                last: Some(saved.last),
                target: None,
                revalidate_before_ms: saved.revalidate_before_ms,
            },
            None => Position::default(),
        }
    }

    /// What to save of it (once it is connected).
    fn to_save(&self, url: &str) -> Option<FeedPosition> {
        Some(FeedPosition {
            url: url.to_owned(),
            store_id: self.store_id.clone()?,
            last: self.last?,
            revalidate_before_ms: self.revalidate_before_ms,
        })
    }

    /// Everything the store had committed when this connection opened is applied.
    fn caught_up(&self) -> bool {
        matches!((self.last, self.target), (Some(last), Some(target)) if last >= target)
    }

    /// Reads one line of the feed. Err: garbage (the follower resyncs and reconnects).
    fn read(&mut self, text: &str) -> Result<Step, String> {
        let line = Line::parse(text)?;
        match (line, self.last) {
            (Line::Hello { store_id, last }, known) => {
                let same = self.store_id.as_deref() == Some(store_id.as_str());
                self.store_id = Some(store_id);
                self.target = Some(last);
                // Numbers that went back are other data under the same name (restored from
                // an older copy).
                if same && known.is_some_and(|k| k <= last) {
                    return Ok(Step::Nothing);
                }
                // First contact (the cache may hold what was fetched before), or other data.
                self.last = Some(last);
                Ok(Step::Resync)
            }
            (_, None) => Err("a feed line before the hello line".into()),
            (Line::KeepAlive { last }, Some(applied)) if last < applied => {
                // The store's numbers went back: its data was restored from an older copy.
                self.last = Some(last);
                Ok(Step::Resync)
            }
            (Line::KeepAlive { .. }, Some(_)) => Ok(Step::CaughtUp),
            (Line::Event(e), Some(applied)) if e.seq <= applied => Ok(Step::Nothing),
            (Line::Event(e), Some(applied)) if e.seq > applied + 1 => {
                self.last = Some(e.seq);
                Ok(Step::Resync)
            }
            (Line::Event(e), Some(_)) => {
                self.last = Some(e.seq);
                Ok(Step::Apply(e))
            }
        }
    }

    fn path(&self) -> String {
        match self.last {
            Some(last) => format!("{CHANGES_PATH}?after={last}"),
            None => CHANGES_PATH.to_owned(),
        }
    }
}

/// How a connection to the feed ended.
enum End {
    /// Broken, refused or garbled: reconnect after a backoff.
    Cut(String),
    /// Events were missed and the entries marked: follow on at once.
    Resynced,
    /// Not a feed here (not an Outpost store, or it refuses this edge's key).
    NotFollowed(String),
}

/// What a follower tells besides the cache: that it caught up (once, to [`start`]), and
/// where it stands, to its saver ([`keep_saving`]), which keeps it with the disk tier.
struct Progress {
    url: String,
    settled: Option<tokio::sync::oneshot::Sender<()>>,
    place: tokio::sync::watch::Sender<Option<FeedPosition>>,
}

impl Progress {
    /// The follower knows what to make of the entries it holds (caught up, resynced, or not
    /// a feed here).
    fn settle(&mut self) {
        if let Some(settled) = self.settled.take() {
            let _ = settled.send(());
        }
    }

    /// The follower applied what `position` says (the cache forgot what it dropped before
    /// `apply` returned): it may be saved.
    fn moved(&self, position: &Position) {
        let now = position.to_save(&self.url);
        self.place.send_if_modified(|place| {
            let moved = *place != now;
            if moved {
                place.clone_from(&now);
            }
            moved
        });
    }
}

/// Saves the place of follower `n` each time it moved, at most once per [`SAVE_EVERY`] (and
/// again after a failure), off the follower's path: a saved place may lag behind, never run
/// ahead. Lagging is safe: a restart replays the events after it (an event drops only what is
/// older), and the store tells again of any it can no longer give.
async fn keep_saving(
    edge: Arc<Edge>,
    n: usize,
    mut place: tokio::sync::watch::Receiver<Option<FeedPosition>>,
) {
    let gauge = edge
        .metrics
        .feed
        .saved_seq
        .get_or_create(&OriginLabel { origin: n })
        .clone();
    while place.changed().await.is_ok() {
        loop {
            let Some(saved) = place.borrow_and_update().clone() else {
                break;
            };
            let done = edge.cache.records.save_feed_position(&saved).await;
            if done {
                gauge.set(saved.last as i64);
            }
            tokio::time::sleep(SAVE_EVERY).await;
            if done {
                break;
            }
        }
    }
}

async fn follow(
    edge: Arc<Edge>,
    n: usize,
    followed: Followed,
    mut position: Position,
    mut progress: Progress,
) {
    let label = OriginLabel { origin: n };
    let mut backoff = MIN_BACKOFF;
    let mut said_not_followed = false;
    loop {
        let started = std::time::Instant::now();
        let end = session(&edge, &label, &followed, &mut position, &mut progress).await;
        progress.moved(&position);
        let wait = match end {
            End::Resynced => Duration::ZERO,
            End::NotFollowed(why) => {
                progress.settle();
                if !std::mem::replace(&mut said_not_followed, true) {
                    tracing::info!(origin = n, %why, "not following this origin's change feed");
                }
                NOT_FOLLOWED_RETRY
            }
            End::Cut(why) => {
                tracing::debug!(origin = n, %why, "change feed cut; reconnecting");
                if started.elapsed() > MAX_BACKOFF {
                    backoff = MIN_BACKOFF; // it had been working
                }
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        edge.metrics.feed.reconnects.get_or_create(&label).inc();
        tokio::time::sleep(wait).await;
    }
}

/// One connection to the feed, read until it ends.
async fn session(
    edge: &Edge,
    label: &OriginLabel,
    followed: &Followed,
    position: &mut Position,
    progress: &mut Progress,
) -> End {
    let request = OriginRequest {
        method: Method::GET,
        path_and_query: position.path(),
        headers: applied::announcement(edge),
        anonymous: false,
        aws_chunked: false,
    };
    let response = match followed.group.fetch_from(followed.index, &request).await {
        Ok(r) => r,
        Err(e) => return End::Cut(e.to_string()),
    };
    let status = response.status();
    let ndjson = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/x-ndjson"));
    let subscription = applied::subscription(response.headers());
    let mut body = response.into_body();
    match status {
        StatusCode::OK if ndjson => {}
        StatusCode::GONE => {
            let answer = match read_small(&mut body).await {
                Some(a) => a,
                None => return End::Cut("unreadable gone answer".into()),
            };
            let Some(last) = answer["last"].as_u64() else {
                return End::Cut("gone answer without last".into());
            };
            position.store_id = answer["store_id"].as_str().map(str::to_owned);
            position.last = Some(last);
            resync(edge, label, followed, position);
            progress.settle();
            return End::Resynced;
        }
        StatusCode::FORBIDDEN => {
            return End::NotFollowed("the origin refuses this edge's key".into());
        }
        s if s.is_client_error() || s == StatusCode::NOT_IMPLEMENTED || !ndjson => {
            return End::NotFollowed(format!("the origin answers {s}: not an Outpost store"));
        }
        s => return End::Cut(format!("the origin answers {s}")),
    }
    let group = Arc::clone(&followed.group);
    let reporter = subscription.map(|id| applied::Reporter::start(group, followed.index, id));
    let mut buffer = Vec::new();
    loop {
        let frame = match body.frame().await {
            None => return End::Cut("the feed ended".into()),
            Some(Err(e)) => return End::Cut(e.to_string()),
            Some(Ok(frame)) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..end]);
            let step = position.read(&text);
            // Counted before the cache changes, so whoever sees the change sees it counted.
            if let Some(last) = position.last {
                edge.metrics
                    .feed
                    .last_seq
                    .get_or_create(label)
                    .set(last as i64);
            }
            match step {
                Ok(Step::Apply(event)) => {
                    observe(edge, label, &event);
                    apply(edge, &event).await;
                }
                Ok(Step::Nothing) => {}
                Ok(Step::CaughtUp) => {
                    edge.metrics.feed.lag_seconds.get_or_create(label).set(0.0);
                }
                Ok(Step::Resync) => resync(edge, label, followed, position),
                Err(why) => {
                    tracing::warn!(origin = label.origin, %why, "garbage in the change feed; resyncing");
                    resync(edge, label, followed, position);
                    progress.settle();
                    return End::Cut(why);
                }
            }
            // Applied (or marked for revalidation) up to here: the store may say so.
            if let (Some(reporter), Some(last)) = (&reporter, position.last) {
                reporter.applied(last);
            }
            if position.caught_up() {
                progress.settle();
            }
        }
        if buffer.len() > MAX_LINE {
            resync(edge, label, followed, position);
            progress.settle();
            return End::Cut("a feed line past the largest".into());
        }
        progress.moved(position);
    }
}

fn observe(edge: &Edge, label: &OriginLabel, event: &Event) {
    let feed = &edge.metrics.feed;
    let kind = event.change.kind.as_str();
    feed.applied.get_or_create(&KindLabel { kind }).inc();
    let lag = SystemTime::now()
        .duration_since(event.time)
        .unwrap_or_default();
    feed.lag_seconds.get_or_create(label).set(lag.as_secs_f64());
}

fn resync(edge: &Edge, label: &OriginLabel, followed: &Followed, position: &mut Position) {
    for group in &followed.groups {
        edge.cache.mark_for_revalidation(group);
    }
    // Saved with the position: the marks outlive a restart.
    let now = edge
        .cache
        .clock
        .now()
        .duration_since(SystemTime::UNIX_EPOCH);
    position.revalidate_before_ms = now.map_or(0, |d| d.as_millis() as u64 + 1);
    // Counted once marked: a test waiting for the count then finds the entries marked.
    edge.metrics.feed.resyncs.get_or_create(label).inc();
    tracing::info!(
        origin = label.origin,
        "change feed resynced: held entries will be revalidated"
    );
}

/// Drops what `event` makes stale (see the module documentation).
pub async fn apply(edge: &Edge, event: &Event) {
    let change = &event.change;
    let bucket = change.bucket.clone().unwrap_or_default();
    let cache = &edge.cache;
    match change.kind {
        ChangeKind::Put | ChangeKind::Delete => {
            let key = change.key.as_deref().unwrap_or_default();
            cache.supersede(&bucket, key, event.seq).await;
        }
        // A change of CORS rules changes every answer of the bucket: whether it varies by
        // Origin is the store's `Vary`, kept with each entry.
        ChangeKind::BucketCreate | ChangeKind::BucketDelete | ChangeKind::Cors => {
            edge.cors.forget_bucket(&bucket);
            cache.purge(move |_, b, _| b == bucket);
        }
        ChangeKind::Policy | ChangeKind::PublicAccess => {
            cache.purge(move |n, b, _| n == ANONYMOUS && b == bucket);
        }
        ChangeKind::Website => cache.purge(move |_, b, k| b == bucket && k.is_empty()),
        ChangeKind::Invalidation => cache.invalidate(&change.paths),
        ChangeKind::Key | ChangeKind::Grant => {}
    }
}

/// A small JSON answer's body.
async fn read_small(body: &mut crate::origin::OriginBody) -> Option<serde_json::Value> {
    let mut all = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.ok()?.into_data() {
            all.extend_from_slice(&data);
            if all.len() > MAX_GONE {
                return None;
            }
        }
    }
    serde_json::from_slice(&all).ok()
}

#[cfg(test)]
mod tests;
