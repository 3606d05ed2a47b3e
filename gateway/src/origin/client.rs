//! The pooled HTTP/1.1 client every origin shares, and the relayed body it can hand back.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// How long an idle pooled connection is kept: a new one toward a far origin costs a round
/// trip before the first byte (DESIGN.md, "Small things that decide speed"). Just under the
/// store's own idle limit (its `header_read_timeout_secs`, 30 s by default, also ends idle
/// keep-alive connections): the edge lets go first, so it never puts a request on a
/// connection the store is closing, which a streamed upload could not retry.
const POOL_IDLE: Duration = Duration::from_secs(25);

/// TCP keep-alive probes on pooled connections, so a peer that vanished without a FIN (a
/// rebooted host, a dropped NAT entry) is noticed before a request is put on its connection.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

pub type Pool = Client<HttpConnector, Body>;

/// One client for all origins of a group: HTTP/1.1 with keep-alive, idle connections evicted
/// after [`POOL_IDLE`], `TCP_NODELAY` on every connection, connects bounded by
/// `connect_timeout`.
pub fn pool(connect_timeout: Duration) -> Pool {
    let mut connector = HttpConnector::new();
    // Delayed-ACK interplay stalls small requests by ~40 ms without this (DESIGN.md).
    connector.set_nodelay(true);
    connector.set_keepalive(Some(TCP_KEEPALIVE));
    connector.set_connect_timeout(Some(connect_timeout));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        // Without a timer idle connections are only checked when next checked out.
        .pool_timer(TokioTimer::new())
        .build(connector)
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

/// A relayed request body that can be taken back while none of it has been read: a refused
/// connection never touches the body, so the request may still go to the next origin. Once
/// hyper starts reading it, it belongs to that attempt.
pub struct Relayed {
    slot: Arc<Mutex<Slot>>,
}

struct Slot {
    /// The body while no attempt has started reading it.
    unread: Option<Body>,
    /// The client's own body error, kept for the caller (hyper only sees [`BodyFailed`]).
    error: Option<axum::Error>,
}

impl Relayed {
    pub fn new(body: Body) -> Relayed {
        Relayed {
            slot: Arc::new(Mutex::new(Slot {
                unread: Some(body),
                error: None,
            })),
        }
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
    pub fn take_back(self) -> Option<Relayed> {
        let unread = self.slot.lock().expect("relay slot").unread.take()?;
        Some(Relayed::new(unread))
    }

    /// The client's body failed while it was being sent (the client went away, or the body
    /// failed the edge's checks): the origin is not to blame.
    pub fn take_body_error(&self) -> Option<axum::Error> {
        self.slot.lock().expect("relay slot").error.take()
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
            None => f(self.slot.lock().expect("relay slot").unread.as_ref()),
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
            None => match this.slot.lock().expect("relay slot").unread.take() {
                Some(body) => this.body.insert(body),
                // Never a clean end: a server could commit a truncated object.
                None => return Poll::Ready(Some(Err(BodyFailed::Withdrawn))),
            },
        };
        match ready!(Pin::new(body).poll_frame(cx)) {
            Some(Err(e)) => {
                this.slot.lock().expect("relay slot").error = Some(e);
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
        let relayed = Relayed::new(Body::from("hello"));
        let stale = relayed.attempt();
        assert_eq!(http_body::Body::size_hint(&stale).exact(), Some(5));
        let relayed = relayed.take_back().expect("nothing was read");
        assert!(
            stale.collect().await.is_err(),
            "withdrawn, not an empty body"
        );
        let sent = relayed.attempt().collect().await.unwrap().to_bytes();
        assert_eq!(sent, "hello");
        assert!(
            relayed.take_back().is_none(),
            "read bodies stay with their attempt"
        );
    }

    #[tokio::test]
    async fn the_clients_body_error_is_kept_for_the_caller() {
        let failing = futures::stream::iter([
            Ok(Bytes::from_static(b"part")),
            Err(std::io::Error::other("client went away")),
        ]);
        let relayed = Relayed::new(Body::from_stream(failing));
        assert!(relayed.attempt().collect().await.is_err());
        let e = relayed.take_body_error().expect("kept");
        assert!(describe(&e).contains("client went away"), "{e}");
    }
}
