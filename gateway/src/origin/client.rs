//! The pooled HTTP/1.1 client every origin shares (plain or TLS, by the origin's scheme), and
//! the outgoing body it can hand back.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::{Instant, Sleep};

/// How long an idle pooled connection is kept: a new one toward a far origin costs a round
/// trip before the first byte (DESIGN.md, "Small things that decide speed"). Just under the
/// store's own idle limit (its `header_read_timeout_secs`, 30 s by default, also ends idle
/// keep-alive connections): the edge lets go first, so it never puts a request on a
/// connection the store is closing, which a streamed upload could not retry.
const POOL_IDLE: Duration = Duration::from_secs(25);

/// TCP keep-alive probes on pooled connections, so a peer that vanished without a FIN (a
/// rebooted host, a dropped NAT entry) is noticed before a request is put on its connection.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

pub type Pool = Client<HttpsConnector<HttpConnector>, Body>;

/// One client for all origins of a group: HTTP/1.1 with keep-alive, idle connections evicted
/// after [`POOL_IDLE`], `TCP_NODELAY` on every connection, connects (TLS handshakes
/// included) bounded by `connect_timeout`; `https://` origins over `tls`.
pub fn pool(connect_timeout: Duration, tls: &rustls::ClientConfig) -> Pool {
    let mut connector = HttpConnector::new();
    // https:// URIs go through this connector too (wrapped below).
    connector.enforce_http(false);
    // Delayed-ACK interplay stalls small requests by ~40 ms without this (DESIGN.md).
    connector.set_nodelay(true);
    connector.set_keepalive(Some(TCP_KEEPALIVE));
    connector.set_connect_timeout(Some(connect_timeout));
    Client::builder(TokioExecutor::new())
        // An object's answer carries its metadata headers: as many as a store accepts.
        .http1_max_headers(outpost_store::server::MAX_HEADERS)
        .pool_idle_timeout(POOL_IDLE)
        // Without a timer idle connections are only checked when next checked out.
        .pool_timer(TokioTimer::new())
        .build(
            HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http()
                .enable_http1()
                .wrap_connector(connector),
        )
}

/// Whether a request failed for want of the edge's own resources: no file descriptor left for
/// the connection (EMFILE, ENFILE: 24 and 23 on Linux and the BSDs). That says nothing about
/// the origin.
pub fn is_local_shortage(e: &(dyn std::error::Error + 'static)) -> bool {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    let mut source = Some(e);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(io.raw_os_error(), Some(EMFILE | ENFILE))
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// An error and its sources on one line (`client error (Connect): tcp connect error: ...`):
/// hyper's own message alone does not say what went wrong.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// An origin's answer body that fails once the origin sends nothing for `idle`: a stalled
/// origin must not hold a reader, a cache fill or a client connection for ever.
#[derive(Debug)]
pub struct OriginBody {
    inner: Incoming,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    /// The timer runs only while the edge waits on the origin, not while its own reader (a slow
    /// client) does not ask.
    waiting: bool,
}

/// Why an origin's answer body failed.
#[derive(Debug, thiserror::Error)]
pub enum OriginBodyError {
    #[error("the origin sent nothing for {0:?}")]
    Idle(Duration),
    #[error("the origin's answer broke off: {0}")]
    Broken(#[from] hyper::Error),
}

impl OriginBody {
    pub fn new(inner: Incoming, idle: Duration) -> OriginBody {
        OriginBody {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            waiting: false,
        }
    }
}

impl http_body::Body for OriginBody {
    type Data = Bytes;
    type Error = OriginBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, OriginBodyError>>> {
        let this = &mut *self;
        if !this.waiting {
            this.waiting = true;
            let deadline = Instant::now() + this.idle;
            this.timer.as_mut().reset(deadline);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.waiting = false;
            return Poll::Ready(frame.map(|f| f.map_err(OriginBodyError::from)));
        }
        ready!(this.timer.as_mut().poll(cx));
        Poll::Ready(Some(Err(OriginBodyError::Idle(this.idle))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An outgoing request body that can be taken back while none of it has been read: a refused
/// connection never touches the body, so the request may still go to the next origin. Once
/// hyper starts reading it, it belongs to that attempt.
pub struct Resendable {
    slot: Arc<Mutex<Slot>>,
}

struct Slot {
    /// The body while no attempt has started reading it.
    unread: Option<Body>,
    /// The client's own body error, kept for the caller (hyper only sees [`BodyFailed`]).
    error: Option<axum::Error>,
    /// Since when, and whose turn it is: hyper asks for the next piece when the origin took
    /// the last one; a piece the client has not sent yet is the client's delay, not the
    /// origin's.
    since: Instant,
    clients_turn: bool,
}

impl Resendable {
    pub fn new(body: Body) -> Resendable {
        Resendable {
            slot: Arc::new(Mutex::new(Slot {
                unread: Some(body),
                error: None,
                since: Instant::now(),
                clients_turn: false,
            })),
        }
    }

    /// Since when the origin has owed the next step (taking more of the body, or its answer
    /// once it has all of it); None while the edge waits for the client's next bytes.
    pub fn origins_turn_since(&self) -> Option<Instant> {
        let slot = self.slot.lock().expect("body slot");
        (!slot.clients_turn).then_some(slot.since)
    }

    /// The body to send on one attempt.
    pub fn attempt(&self) -> Body {
        Body::new(Outgoing {
            slot: Arc::clone(&self.slot),
            body: None,
        })
    }

    /// After a failed attempt: the body for another one, if that attempt read none of it.
    /// Withdrawn from the old attempt either way, so it could never send it too.
    pub fn take_back(self) -> Option<Resendable> {
        let unread = self.slot.lock().expect("body slot").unread.take()?;
        Some(Resendable::new(unread))
    }

    /// The client's body failed while it was being sent (the client went away, or the body
    /// failed the edge's checks): the origin is not to blame.
    pub fn take_body_error(&self) -> Option<axum::Error> {
        self.slot.lock().expect("body slot").error.take()
    }
}

/// What hyper sees when the client's body fails: the cause is kept for the caller.
#[derive(Debug, thiserror::Error)]
enum BodyFailed {
    #[error("the client's request body failed")]
    Client,
    #[error("the request body was withdrawn for another attempt")]
    Withdrawn,
}

struct Outgoing {
    slot: Arc<Mutex<Slot>>,
    /// Taken from the slot on the first read.
    body: Option<Body>,
}

impl Outgoing {
    fn peek<T>(&self, f: impl FnOnce(Option<&Body>) -> T) -> T {
        match &self.body {
            Some(body) => f(Some(body)),
            None => f(self.slot.lock().expect("body slot").unread.as_ref()),
        }
    }
}

impl http_body::Body for Outgoing {
    type Data = Bytes;
    type Error = BodyFailed;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyFailed>>> {
        let this = &mut *self;
        let body = match &mut this.body {
            Some(body) => body,
            None => match this.slot.lock().expect("body slot").unread.take() {
                Some(body) => this.body.insert(body),
                // Never a clean end: a server could commit a truncated object.
                None => return Poll::Ready(Some(Err(BodyFailed::Withdrawn))),
            },
        };
        let polled = Pin::new(body).poll_frame(cx);
        let mut slot = this.slot.lock().expect("body slot");
        slot.since = Instant::now();
        slot.clients_turn = polled.is_pending();
        match ready!(polled) {
            Some(Err(e)) => {
                slot.error = Some(e);
                Poll::Ready(Some(Err(BodyFailed::Client)))
            }
            Some(Ok(frame)) => Poll::Ready(Some(Ok(frame))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.peek(|body| body.is_some_and(http_body::Body::is_end_stream))
    }

    fn size_hint(&self) -> SizeHint {
        self.peek(|body| body.map(http_body::Body::size_hint).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn an_unread_body_can_be_taken_back_and_the_old_attempt_cannot_send_it() {
        let outgoing = Resendable::new(Body::from("hello"));
        let stale = outgoing.attempt();
        assert_eq!(http_body::Body::size_hint(&stale).exact(), Some(5));
        let outgoing = outgoing.take_back().expect("nothing was read");
        assert!(
            stale.collect().await.is_err(),
            "withdrawn, not an empty body"
        );
        let sent = outgoing.attempt().collect().await.unwrap().to_bytes();
        assert_eq!(sent, "hello");
        assert!(
            outgoing.take_back().is_none(),
            "read bodies stay with their attempt"
        );
    }

    #[tokio::test]
    async fn the_clients_body_error_is_kept_for_the_caller() {
        let failing = futures::stream::iter([
            Ok(Bytes::from_static(b"part")),
            Err(std::io::Error::other("client went away")),
        ]);
        let outgoing = Resendable::new(Body::from_stream(failing));
        assert!(outgoing.attempt().collect().await.is_err());
        let e = outgoing.take_body_error().expect("kept");
        assert!(describe(&e).contains("client went away"), "{e}");
    }
}
