//! Request bodies as the operations read them, the same at the store and at the edge: memory
//! per connection bounded by a constant whatever the client's segmentation, and slow clients
//! cut off with `RequestTimeout` (a limit on each wait, and a minimum rate).

use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use crate::engine::ByteStream;
use crate::error::{Code, Error, Result};

/// How slowly a client may send a body.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Longest wait for the next bytes.
    pub idle: Duration,
    /// Fewest bytes per second the client must deliver, measured over each `window` of time
    /// spent waiting for it; 0 disables the check. Time the server spends not reading (a slow
    /// disk, a slow origin) does not count against the client.
    pub min_rate: u64,
    pub window: Duration,
}

impl BodyLimits {
    /// From the configuration keys the store and the edge share (seconds, bytes per second).
    pub fn new(idle_secs: u64, min_rate: u64, window_secs: u64) -> BodyLimits {
        BodyLimits {
            idle: Duration::from_secs(idle_secs),
            min_rate,
            window: Duration::from_secs(window_secs.max(1)),
        }
    }
}

/// Reads below this size are copied together: a tiny read from the network would otherwise
/// keep its whole receive buffer alive for as long as the piece is held (~3.6 KiB per 1-byte
/// segment, measured).
const SMALL: usize = 16 << 10;
/// Size of the copied-together pieces.
const GATHER: usize = 64 << 10;

/// The client's body under `limits`, with small reads gathered into larger pieces;
/// `on_bytes` sees each read's size (for byte accounting).
pub fn client_body(
    body: Body,
    limits: BodyLimits,
    on_bytes: impl FnMut(usize) + Send + 'static,
) -> ByteStream {
    let reader = Reader {
        stream: body.into_data_stream(),
        limits,
        on_bytes: Box::new(on_bytes),
        gathered: BytesMut::new(),
        pending: None,
        ended: false,
        waited: Duration::ZERO,
        received: 0,
    };
    futures::stream::unfold(reader, |mut reader| async move {
        let next = reader.next().await?;
        if next.is_err() {
            reader.ended = true;
            reader.gathered.clear();
        }
        Some((next, reader))
    })
    .boxed()
}

struct Reader {
    stream: axum::body::BodyDataStream,
    limits: BodyLimits,
    on_bytes: Box<dyn FnMut(usize) + Send>,
    gathered: BytesMut,
    /// A large read that arrived while small ones were gathered: it goes out next.
    pending: Option<Bytes>,
    ended: bool,
    /// Time spent waiting for the client, and bytes it delivered, in the current window.
    waited: Duration,
    received: u64,
}

impl Reader {
    async fn next(&mut self) -> Option<Result<Bytes>> {
        if let Some(piece) = self.pending.take() {
            return Some(Ok(piece));
        }
        loop {
            if self.ended {
                return (!self.gathered.is_empty()).then(|| Ok(self.gathered.split().freeze()));
            }
            let started = Instant::now();
            let read = tokio::time::timeout(self.limits.idle, self.stream.next()).await;
            let piece = match read {
                Err(_) => return Some(Err(Error::new(Code::RequestTimeout))),
                Ok(None) => {
                    self.ended = true;
                    continue;
                }
                Ok(Some(Err(e))) => {
                    return Some(Err(Error::msg(
                        Code::IncompleteBody,
                        format!("The request body could not be read: {e}"),
                    )));
                }
                Ok(Some(Ok(piece))) => piece,
            };
            (self.on_bytes)(piece.len());
            if let Err(e) = self.check_rate(started.elapsed(), piece.len()) {
                return Some(Err(e));
            }
            if piece.len() >= SMALL {
                if self.gathered.is_empty() {
                    return Some(Ok(piece));
                }
                self.pending = Some(piece);
                return Some(Ok(self.gathered.split().freeze()));
            }
            if self.gathered.is_empty() {
                self.gathered.reserve(GATHER);
            }
            self.gathered.extend_from_slice(&piece);
            if self.gathered.len() >= GATHER {
                return Some(Ok(self.gathered.split().freeze()));
            }
        }
    }

    /// RequestTimeout once a full window of waiting brought fewer bytes than the minimum rate.
    fn check_rate(&mut self, waited: Duration, bytes: usize) -> Result<()> {
        let BodyLimits {
            min_rate, window, ..
        } = self.limits;
        if min_rate == 0 {
            return Ok(());
        }
        self.waited += waited;
        self.received += bytes as u64;
        if self.waited < window {
            return Ok(());
        }
        let expected = (min_rate as f64 * self.waited.as_secs_f64()) as u64;
        if self.received < expected {
            return Err(Error::msg(
                Code::RequestTimeout,
                format!(
                    "The request body arrived at {} bytes/s, below the minimum of {min_rate} bytes/s.",
                    (self.received as f64 / self.waited.as_secs_f64()) as u64
                ),
            ));
        }
        (self.waited, self.received) = (Duration::ZERO, 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn limits() -> BodyLimits {
        BodyLimits {
            idle: Duration::from_secs(5),
            min_rate: 0,
            window: Duration::from_secs(10),
        }
    }

    fn body_of(pieces: Vec<Vec<u8>>) -> Body {
        let stream = futures::stream::iter(
            pieces
                .into_iter()
                .map(|p| Ok::<_, std::io::Error>(Bytes::from(p))),
        );
        Body::from_stream(stream)
    }

    #[tokio::test]
    async fn small_reads_are_gathered_and_large_ones_pass() {
        let mut pieces: Vec<Vec<u8>> = (0..100_000u32).map(|i| vec![i as u8]).collect();
        pieces.push(vec![7; 100_000]);
        pieces.push(vec![8; 3]);
        let expected: Vec<u8> = pieces.concat();
        let out: Vec<Bytes> = client_body(body_of(pieces), limits(), |_| {})
            .try_collect()
            .await
            .unwrap();
        assert_eq!(out.concat(), expected);
        let sizes: Vec<usize> = out.iter().map(Bytes::len).collect();
        // 100,000 one-byte reads became two gathered pieces, then the large read whole.
        assert_eq!(sizes, [GATHER, 100_000 - GATHER, 100_000, 3]);
        assert!(sizes.contains(&100_000));
    }

    #[tokio::test]
    async fn a_trickle_below_the_minimum_rate_times_out() {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if tx.send(Ok(Bytes::from_static(b"x"))).await.is_err() {
                    return;
                }
            }
        });
        let body = Body::from_stream(tokio_stream_of(rx));
        // 10 bytes/s against a minimum of 100, over a 1 s window.
        let slow = BodyLimits {
            min_rate: 100,
            window: Duration::from_secs(1),
            ..limits()
        };
        let err = client_body(body, slow, |_| {})
            .try_collect::<Vec<Bytes>>()
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::RequestTimeout);
    }

    fn tokio_stream_of(
        rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    ) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
    }
}
