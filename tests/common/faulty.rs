//! A TCP proxy between an edge and its store that a test switches between faults: the edge's
//! `origins` point at [`FaultyOrigin::url`], every connection is forwarded to the real store,
//! and the current [`Fault`] decides, byte by byte, what the edge sees. The switch acts on
//! connections already open too (the edge keeps its origin connections warm and pooled), so
//! a test needs no knowledge of which connection the edge picks.
//!
//! [`FaultyOrigin::inject_into_feed`] slips bytes into the change feed's stream instead, as a
//! chunk of the HTTP/1.1 answer of its own (the edge sees them as the store's).
//!
//! The proxy runs on its own thread and runtime, so it serves whatever runtime (or none) the
//! test uses; dropping it stops it and closes every connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the origin does from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A faithful proxy.
    Pass,
    /// Takes requests and never answers: bytes from the edge are swallowed.
    Hang,
    /// Forwards requests, but only this many more bytes of answers (counted over all
    /// connections from the moment of the switch); after that the connections stay open and
    /// silent.
    StallAfter(usize),
    /// Resets (RST) a connection as soon as the edge sends on it.
    Reset,
    /// Answers whatever the edge sends with bytes that are not HTTP, then closes.
    Garbage,
}

/// What an origin that answers garbage sends.
pub const GARBAGE: &[u8] = b"\x00\x17\xffSSH-2.0-not-http\r\n\x01\x02\x03\r\n\r\n";

struct State {
    fault: Mutex<Fault>,
    /// Answer bytes still let through under [`Fault::StallAfter`].
    budget: AtomicUsize,
    accepted: AtomicUsize,
    /// Bytes to put into the next change feed answer passing by, at a chunk boundary.
    feed_inject: Mutex<Option<Vec<u8>>>,
}

impl State {
    fn fault(&self) -> Fault {
        *self.fault.lock().unwrap()
    }

    /// How many of `n` answer bytes may reach the edge now.
    fn allow(&self, n: usize) -> usize {
        match self.fault() {
            Fault::Pass => n,
            Fault::StallAfter(_) => {
                let before = self
                    .budget
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                        Some(b.saturating_sub(n))
                    })
                    .expect("the update always succeeds");
                before.min(n)
            }
            Fault::Hang | Fault::Reset | Fault::Garbage => 0,
        }
    }
}

/// A running proxy; see the module documentation.
pub struct FaultyOrigin {
    /// `http://127.0.0.1:PORT`, for the edge's `origins`.
    pub url: String,
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultyOrigin {
    /// A proxy to `upstream` (`127.0.0.1:PORT`), passing everything until told otherwise.
    pub fn start(upstream: &str) -> FaultyOrigin {
        let upstream: SocketAddr = upstream.parse().expect("upstream is ip:port");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            fault: Mutex::new(Fault::Pass),
            budget: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            feed_inject: Mutex::new(None),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        shared.accepted.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(proxy(client, upstream, Arc::clone(&shared)));
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime drops every connection task, closing their sockets.
        });
        FaultyOrigin {
            url: format!("http://{addr}"),
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Switches what the origin does, on open connections and new ones alike.
    pub fn set(&self, fault: Fault) {
        if let Fault::StallAfter(n) = fault {
            self.state.budget.store(n, Ordering::SeqCst);
        }
        *self.state.fault.lock().unwrap() = fault;
    }

    /// Puts `bytes` into the change feed stream (the answer to a `GET /_outpost/changes`
    /// passing through) as a chunk of its own, between two of the store's chunks: once, at
    /// the next boundary. Only while the proxy passes everything.
    pub fn inject_into_feed(&self, bytes: &[u8]) {
        *self.state.feed_inject.lock().unwrap() = Some(bytes.to_vec());
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultyOrigin {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where an HTTP/1.1 answer stands, byte by byte, to find the boundaries of its chunks.
enum Chunks {
    /// The head so far.
    Head(Vec<u8>),
    /// Where a chunk's size line starts: a boundary.
    Start,
    Size(usize),
    Data(usize),
    /// The CRLF after a chunk's data: bytes of it left.
    DataEnd(u8),
    /// The last chunk came, or the body is not chunked.
    Done,
}

impl Default for Chunks {
    fn default() -> Self {
        Chunks::Head(Vec::new())
    }
}

impl Chunks {
    /// Offsets in `bytes` (the next bytes of the answer) where a chunk may be put in.
    fn boundaries(&mut self, bytes: &[u8]) -> Vec<usize> {
        let mut at = Vec::new();
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(self, Chunks::Start) {
                at.push(i);
            }
            *self = match (std::mem::take(self), b) {
                (Chunks::Head(mut head), b) => {
                    head.push(b);
                    match head.ends_with(b"\r\n\r\n") {
                        false => Chunks::Head(head),
                        true if head
                            .to_ascii_lowercase()
                            .windows(7)
                            .any(|w| w == b"chunked") =>
                        {
                            Chunks::Start
                        }
                        true => Chunks::Done,
                    }
                }
                (Chunks::Start, b) => Chunks::Size(hex(b)),
                (Chunks::Size(0), b'\n') => Chunks::Done,
                (Chunks::Size(n), b'\n') => Chunks::Data(n),
                (Chunks::Size(n), b) if b.is_ascii_hexdigit() => {
                    Chunks::Size(n.saturating_mul(16).saturating_add(hex(b)))
                }
                (Chunks::Size(n), _) => Chunks::Size(n),
                (Chunks::Data(1), _) => Chunks::DataEnd(2),
                (Chunks::Data(n), _) => Chunks::Data(n - 1),
                (Chunks::DataEnd(1), _) => Chunks::Start,
                (Chunks::DataEnd(n), _) => Chunks::DataEnd(n - 1),
                (Chunks::Done, _) => Chunks::Done,
            };
        }
        if matches!(self, Chunks::Start) {
            at.push(bytes.len());
        }
        at
    }
}

fn hex(b: u8) -> usize {
    (b as char).to_digit(16).unwrap_or(0) as usize
}

/// Whether `bytes` start like a request (`GET /...`, `PUT /...`).
fn is_request_line(bytes: &[u8]) -> bool {
    let method = bytes.iter().take_while(|b| b.is_ascii_uppercase()).count();
    method > 0 && bytes[method..].starts_with(b" /")
}

/// How a connection ends when the edge sends under a fault that ends it.
enum End {
    Closed,
    Reset,
    Garbage,
}

async fn proxy(mut client: TcpStream, upstream: SocketAddr, state: Arc<State>) {
    let _ = client.set_nodelay(true);
    let Ok(mut store) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = store.set_nodelay(true);
    // Which request answers on this connection (HTTP/1.1, no pipelining): 0 any but the
    // change feed, else the feed request's number on it.
    let feed = AtomicUsize::new(0);
    let end = {
        let (mut from_edge, mut to_edge) = client.split();
        let (mut from_store, mut to_store) = store.split();
        let requests = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from_edge.read(&mut buf).await {
                    Ok(0) | Err(_) => return End::Closed,
                    Ok(n) => n,
                };
                if buf[..n].starts_with(b"GET /_outpost/changes") {
                    feed.fetch_add(1, Ordering::SeqCst);
                } else if is_request_line(&buf[..n]) {
                    feed.store(0, Ordering::SeqCst);
                }
                match state.fault() {
                    Fault::Pass | Fault::StallAfter(_) => {
                        if to_store.write_all(&buf[..n]).await.is_err() {
                            return End::Closed;
                        }
                    }
                    Fault::Hang => {}
                    Fault::Reset => return End::Reset,
                    Fault::Garbage => return End::Garbage,
                }
            }
        };
        let answers = async {
            let mut buf = vec![0u8; 64 * 1024];
            let (mut chunks, mut answering) = (Chunks::default(), 0);
            loop {
                let n = match from_store.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let allowed = state.allow(n);
                let mut out = buf[..allowed].to_vec();
                let asked = feed.load(Ordering::SeqCst);
                if asked != 0 && state.fault() == Fault::Pass {
                    if asked != answering {
                        (chunks, answering) = (Chunks::default(), asked);
                    }
                    let at = chunks.boundaries(&out);
                    let injected = at
                        .first()
                        .and_then(|_| state.feed_inject.lock().unwrap().take());
                    if let (Some(&at), Some(bytes)) = (at.first(), injected) {
                        let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
                        chunk.extend_from_slice(&bytes);
                        chunk.extend_from_slice(b"\r\n");
                        out.splice(at..at, chunk);
                    }
                }
                if to_edge.write_all(&out).await.is_err() {
                    break;
                }
            }
            // The store closed: so does the edge's side, unless the answer is being held
            // back (then the stall goes on until the edge gives up).
            if state.fault() == Fault::Pass {
                let _ = to_edge.shutdown().await;
            }
            std::future::pending::<End>().await
        };
        tokio::select! {
            end = requests => end,
            end = answers => end,
        }
    };
    match end {
        End::Closed => {}
        End::Reset => {
            // SO_LINGER 0: close sends RST instead of FIN (and never blocks, which is what
            // tokio's deprecation warns of).
            #[allow(deprecated)]
            let _ = client.set_linger(Some(std::time::Duration::ZERO));
        }
        End::Garbage => {
            let _ = client.write_all(GARBAGE).await;
            let _ = client.shutdown().await;
        }
    }
}
