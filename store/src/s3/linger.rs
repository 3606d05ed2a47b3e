//! Lingering close for request bodies left unread. A server that answers before reading the
//! whole body (a refused DeleteObjects past its size limit, an upload over the object size
//! limit) and then closes makes the kernel reset the connection over the unread bytes, and the
//! reset can destroy the answer before the client reads it: a client still sending sees a
//! broken pipe instead of the 400 (an edge relaying the body then calls the store unreachable).
//! So a body dropped unread is drained in the background, as nginx's `lingering_close` does,
//! bounded in bytes and time so a client cannot keep a connection busy with it.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

/// Most bytes of an unread body read and thrown away.
const LINGER_BYTES: u64 = 64 << 20;
/// Longest time spent doing so: enough for the client to read the answer (it reads while it
/// sends), short enough that a client refused for trickling is not kept on.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// A request body that is drained (see the module) when dropped before its end.
pub fn lingering(body: Body) -> Body {
    Body::new(Lingering { body: Some(body) })
}

struct Lingering {
    body: Option<Body>,
}

impl http_body::Body for Lingering {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match self.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map(http_body::Body::size_hint)
            .unwrap_or_default()
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(mut body) = self
            .body
            .take()
            .filter(|b| !http_body::Body::is_end_stream(b))
        else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let mut drained = 0u64;
            let drain = async {
                while let Some(Ok(frame)) = body.frame().await {
                    drained += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if drained >= LINGER_BYTES {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(LINGER_TIME, drain).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_dropped_unread_is_drained_and_a_read_one_is_left_alone() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        drop(lingering(Body::from_stream(stream)));
        // Only a reader (the drain) makes room for the next piece.
        let sent = async {
            for _ in 0..4 {
                tx.send(Ok(Bytes::from_static(b"unread"))).await.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(10), sent)
            .await
            .expect("the unread body is drained");

        let mut read = lingering(Body::from("all of it"));
        assert_eq!(
            read.frame().await.unwrap().unwrap().into_data().unwrap(),
            "all of it"
        );
        assert!(http_body::Body::is_end_stream(&read));
        drop(read);
    }
}
