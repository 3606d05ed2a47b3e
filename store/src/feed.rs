//! The change feed over HTTP: what edges follow to drop exactly what changed.
//!
//! ```text
//!   GET  /_outpost/changes?after=SEQ   → 200 application/x-ndjson, kept open:
//!        {"kind":"hello","store_id":"…","last":N,"time":"…"}         first, at once
//!        {"seq":N,"time":"…","kind":"put","bucket":"b","key":"k","etag":"\"…\""}  one per event
//!        {"kind":"keepalive","last":N,"time":"…"}                    every change_keepalive_secs idle
//!      → 410 {"code":"ChangesGone","oldest":N,"last":N,"store_id":"…"}  events after SEQ are no
//!        longer all kept (retention), or SEQ was never given (other data): the reader missed
//!        events and must revalidate what it holds, then follow from `last`
//!      → 400 InvalidArgument: `after` is not a number; no `after`: from now
//!        (the request may name the reader: `x-outpost-edge: URL`; the answer carries the
//!        subscription's id in `x-outpost-subscription`)
//!   POST /_outpost/changes/applied?subscription=ID&seq=N → 200: the reader has applied every
//!        event up to N (edges confirm as they go, for `outpost invalidate`'s report)
//!   GET  /_outpost/changes/subscribers → 200 {"last":N,"subscribers":[…]} (root key only):
//!        who follows the feed, who left, what each confirmed ([`subscribers`])
//!   POST /_outpost/invalidations {"paths": ["/bucket/key", "/bucket/prefix*"]}
//!      → 201 {"status":"Accepted","paths":[…],"seq":N,"time":"…"}: an `invalidation` event
//!        for every edge
//! ```
//!
//! All are signed (SigV4, the kit's check) by the root key or an edge key; anonymous and
//! other keys get AccessDenied (403, JSON as the admin API's errors). Events are read from the
//! index's change log (`engine/changes.rs`) after a commit announced a new number: an idle
//! feed costs no disk reads. A reader so slow that the events it has yet to read are pruned
//! meanwhile is cut off; reconnecting tells it they are gone.

pub mod subscribers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::State;
use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::admin::{json_response, verified};
use crate::engine::{Change, ChangeKind, ChangesAfter, Engine, Event};
use crate::error::{Code, Error, Result};
use crate::s3::auth::{Identity, verified_body};
use crate::s3::context::FrontEnd as _;
use crate::s3::{S3, body, request_id, serve::Asked, xml};
use subscribers::{EDGE_HEADER, SUBSCRIPTION_HEADER, Subscription};

/// Where the feed is served.
pub const CHANGES_PATH: &str = "/_outpost/changes";
/// Where a reader confirms what it applied.
pub const APPLIED_PATH: &str = "/_outpost/changes/applied";
/// Where the root key reads who follows the feed.
pub const SUBSCRIBERS_PATH: &str = "/_outpost/changes/subscribers";
/// Where invalidations are posted.
pub const INVALIDATIONS_PATH: &str = "/_outpost/invalidations";
/// Events read from the index at a time.
const PAGE: usize = 512;
/// Largest invalidation request body.
const MAX_BODY: usize = 1 << 20;
/// Most paths one invalidation names (CloudFront takes 3,000 per request).
const MAX_PATHS: usize = 3000;

/// One line of the feed, as both ends read and write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// First line of every feed.
    Hello {
        store_id: String,
        last: u64,
    },
    /// Nothing new; `last` is the last sequence number given.
    KeepAlive {
        last: u64,
    },
    Event(Event),
}

/// The JSON object of a line (fields absent where they do not apply).
#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    time: String,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    store_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    paths: Vec<String>,
}

impl Line {
    /// The line's JSON text with its newline.
    pub fn to_text(&self, now: SystemTime) -> String {
        let mut wire = Wire {
            seq: None,
            time: xml::iso8601(now),
            kind: String::new(),
            store_id: None,
            last: None,
            bucket: None,
            key: None,
            etag: None,
            access_key_id: None,
            paths: Vec::new(),
        };
        match self {
            Line::Hello { store_id, last } => {
                wire.kind = "hello".into();
                wire.store_id = Some(store_id.clone());
                wire.last = Some(*last);
            }
            Line::KeepAlive { last } => {
                wire.kind = "keepalive".into();
                wire.last = Some(*last);
            }
            Line::Event(e) => {
                let c = e.change.clone();
                wire.seq = Some(e.seq);
                wire.time = xml::iso8601(e.time);
                wire.kind = c.kind.as_str().into();
                (wire.bucket, wire.key, wire.etag) = (c.bucket, c.key, c.etag);
                (wire.access_key_id, wire.paths) = (c.access_key_id, c.paths);
            }
        }
        let mut text = serde_json::to_string(&wire).expect("a line always serialises");
        text.push('\n');
        text
    }

    /// Reads one line (without its newline). Err(why) for anything else: not JSON, a field
    /// missing or of the wrong type, an unknown kind.
    pub fn parse(text: &str) -> std::result::Result<Line, String> {
        let wire: Wire = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let need =
            |v: Option<u64>, what: &str| v.ok_or(format!("{} line without {what}", wire.kind));
        match wire.kind.as_str() {
            "hello" => Ok(Line::Hello {
                store_id: wire.store_id.clone().ok_or("hello line without store_id")?,
                last: need(wire.last, "last")?,
            }),
            "keepalive" => Ok(Line::KeepAlive {
                last: need(wire.last, "last")?,
            }),
            kind => {
                let kind: ChangeKind = serde_json::from_value(Value::String(kind.to_owned()))
                    .map_err(|_| format!("unknown kind {kind:?}"))?;
                Ok(Line::Event(Event {
                    seq: need(wire.seq, "seq")?,
                    time: xml::parse_iso8601(&wire.time).ok_or("time is not RFC 3339")?,
                    change: Change {
                        kind,
                        bucket: wire.bucket,
                        key: wire.key,
                        etag: wire.etag,
                        access_key_id: wire.access_key_id,
                        paths: wire.paths,
                    },
                }))
            }
        }
    }
}

/// `GET /_outpost/changes`.
pub async fn changes(
    State(s3): State<Arc<S3>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let id = request_id();
    let (parts, _) = request.into_parts();
    let asked = Asked::of(&parts);
    let opened = async {
        let caller = authorise(&s3, &parts)?;
        let after = number(parts.uri.query(), "after")?;
        let announced = parts.headers.get(EDGE_HEADER).and_then(|v| v.to_str().ok());
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let join = |after| {
            let now = SystemTime::now();
            let key = (caller.name, caller.access_key_id);
            s3.feeds.join(key, announced, peer, after, now)
        };
        open(&s3.engine, after, join).await
    };
    match opened.await {
        Ok(Opened::Feed(tail)) => {
            let mut response = http::Response::builder()
                .header(http::header::CONTENT_TYPE, "application/x-ndjson")
                .header(http::header::CACHE_CONTROL, "no-store")
                .header("x-outpost-store-id", s3.engine.store_id())
                .header(SUBSCRIPTION_HEADER, tail.subscription.id)
                .body(Body::from_stream(
                    tail.lines(s3.config.change_keepalive_secs),
                ))
                .expect("static response parts are valid");
            crate::s3::finish_response(&mut response, &id, asked);
            response
        }
        Ok(Opened::Gone { oldest, last }) => {
            let answer = json!({
                "code": "ChangesGone",
                "message": "Events after this sequence number are no longer kept: revalidate, then follow from `last`.",
                "oldest": oldest,
                "last": last,
                "store_id": s3.engine.store_id(),
            });
            json_response(Ok((StatusCode::GONE, answer)), &parts, &id, asked)
        }
        Err(e) => json_response(Err(e), &parts, &id, asked),
    }
}

/// `POST /_outpost/invalidations`.
pub async fn invalidations(
    State(s3): State<Arc<S3>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let id = request_id();
    let (parts, body) = request.into_parts();
    let asked = Asked::of(&parts);
    let answer = async {
        let payload = authorise(&s3, &parts)?.payload;
        let raw = body::client_body(body, s3.settings().body_limits, |_| {});
        let (checked, _) = verified_body(raw, payload);
        let body = xml::read_small_body(checked, MAX_BODY).await?;
        let paths = invalidation_paths(&body)?;
        let seq = s3.engine.record_invalidation(paths.clone()).await?;
        tracing::info!(?paths, seq, "invalidation recorded for the edges");
        let time = xml::iso8601(SystemTime::now());
        let answer = json!({ "status": "Accepted", "paths": paths, "seq": seq, "time": time });
        Ok((StatusCode::CREATED, answer))
    };
    json_response(answer.await, &parts, &id, asked)
}

/// `POST /_outpost/changes/applied?subscription=ID&seq=N`: by the key the feed was opened with.
pub async fn applied(
    State(s3): State<Arc<S3>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    call(request, |parts| {
        let caller = authorise(&s3, parts)?;
        let query = parts.uri.query();
        let missing = |name: &str| Error::msg(Code::InvalidArgument, format!("{name} is missing."));
        let subscription = number(query, "subscription")?.ok_or_else(|| missing("subscription"))?;
        let seq = number(query, "seq")?.ok_or_else(|| missing("seq"))?;
        if seq > *s3.engine.watch_changes().borrow() {
            return Err(Error::msg(
                Code::InvalidArgument,
                "seq is past the last change this store made.",
            ));
        }
        let now = SystemTime::now();
        s3.feeds
            .applied(subscription, &caller.access_key_id, seq, now)?;
        let answer = json!({ "subscription": subscription, "applied": seq });
        Ok((StatusCode::OK, answer))
    })
}

/// `GET /_outpost/changes/subscribers`: the root key's view of who follows the feed.
pub async fn subscribers(
    State(s3): State<Arc<S3>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    call(request, |parts| {
        if !authorise(&s3, parts)?.root {
            return Err(Error::msg(
                Code::AccessDenied,
                "The feed's subscribers are shown to the root key only.",
            ));
        }
        let keep = s3.config.change_retention().max_age;
        let list = s3.feeds.list(SystemTime::now(), keep);
        let last = *s3.engine.watch_changes().borrow();
        Ok((StatusCode::OK, json!({ "last": last, "subscribers": list })))
    })
}

/// A call answered from its head alone (its body is not read), as JSON.
fn call(
    request: axum::extract::Request,
    answer: impl FnOnce(&http::request::Parts) -> Result<(StatusCode, Value)>,
) -> axum::response::Response {
    let id = request_id();
    let (parts, _) = request.into_parts();
    let asked = Asked::of(&parts);
    json_response(answer(&parts), &parts, &id, asked)
}

/// `{"paths": [...]}`, each path starting with `/` (added if not), at least one.
fn invalidation_paths(body: &[u8]) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Request {
        paths: Vec<String>,
    }
    let request: Request = serde_json::from_slice(body).map_err(|e| {
        Error::msg(
            Code::MalformedJSON,
            format!("Expected {{\"paths\": [...]}}: {e}."),
        )
    })?;
    if request.paths.is_empty() || request.paths.len() > MAX_PATHS {
        return Err(Error::msg(
            Code::InvalidArgument,
            format!("An invalidation names 1 to {MAX_PATHS} paths."),
        ));
    }
    Ok(request
        .paths
        .into_iter()
        .map(|p| {
            if p.starts_with('/') {
                p
            } else {
                format!("/{p}")
            }
        })
        .collect())
}

/// The name the root key goes by in the feed's subscribers.
const ROOT: &str = "root";

/// A caller the feed serves.
struct Caller {
    access_key_id: String,
    /// The name of its key ([`ROOT`] for the root key).
    name: String,
    root: bool,
    payload: crate::s3::auth::Payload,
}

/// The root key or an edge key, and the request's payload check.
fn authorise(s3: &S3, parts: &http::request::Parts) -> Result<Caller> {
    let authenticated = verified(s3, parts)?;
    let (name, root) = match &authenticated.identity {
        Identity::Key(id) if s3.keyring.is_root(id) => (Some(ROOT.to_owned()), true),
        Identity::Key(id) => {
            let keys = s3.engine.keys();
            let key = keys.by_access_key(id).filter(|k| k.edge);
            (key.map(|k| k.name.clone()), false)
        }
        Identity::Anonymous => (None, false),
    };
    let (Some(name), Identity::Key(access_key_id)) = (name, authenticated.identity) else {
        return Err(Error::msg(
            Code::AccessDenied,
            "The change feed is for the root key and edge keys only.",
        ));
    };
    Ok(Caller {
        access_key_id,
        name,
        root,
        payload: authenticated.payload,
    })
}

/// The query parameter `name` as a decimal number (`after=SEQ`, `seq=N`...); None when absent.
fn number(query: Option<&str>, name: &str) -> Result<Option<u64>> {
    let mut found = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != name {
            continue;
        }
        let n = value.parse::<u64>().map_err(|_| {
            Error::msg(
                Code::InvalidArgument,
                format!("{name} must be a decimal integer."),
            )
        })?;
        if found.replace(n).is_some() {
            return Err(Error::msg(
                Code::InvalidArgument,
                format!("{name} is given twice."),
            ));
        }
    }
    Ok(found)
}

enum Opened {
    Feed(Tail),
    Gone { oldest: u64, last: u64 },
}

/// Checks `after` against the log before the answer's status is sent; `join`s the
/// subscribers once the feed is to be sent.
async fn open(
    engine: &Engine,
    after: Option<u64>,
    join: impl FnOnce(u64) -> Subscription,
) -> Result<Opened> {
    let mut watch = engine.watch_changes();
    let now = *watch.borrow_and_update();
    let after = after.unwrap_or(now);
    match engine.changes_after(after, 0).await? {
        ChangesAfter::Gone { oldest, last } => Ok(Opened::Gone { oldest, last }),
        ChangesAfter::Events { last, .. } => Ok(Opened::Feed(Tail {
            subscription: join(after),
            closing: engine.feeds_closing(),
            engine: engine.clone(),
            after,
            watch,
            hello: Some(Line::Hello {
                store_id: engine.store_id().to_owned(),
                last,
            }),
        })),
    }
}

/// A feed being sent: the events after `after`, then whatever commits bring.
struct Tail {
    engine: Engine,
    closing: tokio_util::sync::CancellationToken,
    after: u64,
    watch: tokio::sync::watch::Receiver<u64>,
    hello: Option<Line>,
    subscription: Subscription,
}

impl Tail {
    fn lines(self, keepalive_secs: u64) -> impl futures::Stream<Item = Result<Bytes>> {
        let keepalive = Duration::from_secs(keepalive_secs);
        futures::stream::try_unfold(self, move |mut tail| async move {
            let text = tail.next(keepalive).await?;
            Ok(text.map(|t| (Bytes::from(t), tail)))
        })
    }

    /// The next lines to send; None ends the feed (the store shuts down: [`Engine::close_feeds`],
    /// or this reader fell behind the retention).
    async fn next(&mut self, keepalive: Duration) -> Result<Option<String>> {
        if let Some(hello) = self.hello.take() {
            return Ok(Some(hello.to_text(SystemTime::now())));
        }
        loop {
            if self.closing.is_cancelled() {
                return Ok(None);
            }
            // Marked seen before reading: a commit after the read wakes the wait below.
            let last = *self.watch.borrow_and_update();
            if last > self.after {
                match self.engine.changes_after(self.after, PAGE).await? {
                    ChangesAfter::Events { events, .. } if !events.is_empty() => {
                        self.after = events.last().map_or(self.after, |e| e.seq);
                        self.subscription.sent(self.after);
                        let now = SystemTime::now();
                        let text = events.into_iter().map(|e| Line::Event(e).to_text(now));
                        return Ok(Some(text.collect()));
                    }
                    ChangesAfter::Events { .. } => {}
                    ChangesAfter::Gone { .. } => {
                        tracing::info!(after = self.after, "feed reader fell behind the retention");
                        return Ok(None);
                    }
                }
            }
            tokio::select! {
                () = self.closing.cancelled() => return Ok(None),
                changed = self.watch.changed() => {
                    if changed.is_err() {
                        return Ok(None);
                    }
                }
                () = tokio::time::sleep(keepalive) => {
                    let line = Line::KeepAlive { last: *self.watch.borrow() };
                    return Ok(Some(line.to_text(SystemTime::now())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_back_as_written() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let lines = [
            Line::Hello {
                store_id: "ab".into(),
                last: 7,
            },
            Line::KeepAlive { last: 9 },
            Line::Event(Event {
                seq: 3,
                time: at,
                change: Change::put("b", "k/é", "abc"),
            }),
            Line::Event(Event {
                seq: 4,
                time: at,
                change: Change {
                    paths: vec!["/b/*".into()],
                    ..Change::new(ChangeKind::Invalidation)
                },
            }),
        ];
        for line in lines {
            let text = line.to_text(at);
            assert!(text.ends_with('\n') && !text.trim_end().contains('\n'));
            assert_eq!(Line::parse(text.trim_end()), Ok(line));
        }
        let put = Line::Event(Event {
            seq: 3,
            time: at,
            change: Change::put("b", "k", "abc"),
        });
        assert_eq!(
            put.to_text(at),
            "{\"seq\":3,\"time\":\"2023-11-14T22:13:20.123Z\",\"kind\":\"put\",\"bucket\":\"b\",\"key\":\"k\",\"etag\":\"\\\"abc\\\"\"}\n"
        );
        for bad in [
            "",
            "{",
            "{\"kind\":\"put\",\"time\":\"2023-11-14T22:13:20Z\"}",
            "{\"seq\":1,\"kind\":\"explode\",\"time\":\"2023-11-14T22:13:20Z\"}",
            "{\"seq\":1,\"kind\":\"put\",\"time\":\"yesterday\"}",
            "{\"kind\":\"hello\",\"time\":\"2023-11-14T22:13:20Z\",\"last\":1}",
            "{\"seq\":\"1\",\"kind\":\"put\",\"time\":\"2023-11-14T22:13:20Z\"}",
        ] {
            assert!(Line::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn after_is_a_number_once() {
        assert_eq!(number(None, "after").unwrap(), None);
        assert_eq!(number(Some("after=12"), "after").unwrap(), Some(12));
        assert_eq!(number(Some("x=1&after=0"), "after").unwrap(), Some(0));
        for bad in ["after=", "after=-1", "after=1x", "after=1&after=2", "after"] {
            assert_eq!(
                number(Some(bad), "after").unwrap_err().code,
                Code::InvalidArgument,
                "{bad}"
            );
        }
    }
}
