//! The accept loop shared by the store and the edge: a bound listener in, a shutdown future
//! to stop (so tests bind port 0 and stop cleanly). Plain listeners speak HTTP/1.1; TLS
//! listeners ([`crate::tls`]) HTTP/2 or HTTP/1.1 as ALPN decides. It caps connections, in all
//! and per client address, and bounds TLS handshakes in time and in number, so that idle,
//! slow or stalled clients cannot use up the process's descriptors or hold others back.
//!
//! Connections run in lanes: one thread per core, each with a runtime of its own (its own
//! event loop, as each nginx worker has), and every accepted connection is handed to the next
//! lane in turn. On a shared work-stealing runtime one thread at a time waits for socket
//! events while the others sleep; measured on the edge's small cache hits (BENCHMARKS.md), a
//! lane per core served 1.6-1.8× the requests of that runtime at the same CPU per request.
//! Pingora's "no steal" runtime is the same idea. What a handler spawns (a cache fill, a
//! part's relay) runs in its lane; anything may wait for it from any lane.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::metrics::TlsHandshakes;

/// Headers of an origin's answer the edge's client parses (an object's answer carries its
/// metadata headers). Requests are parsed with hyper's default of 100 instead: hyper sets up
/// its parse buffers for the whole count on every request head (1000 cost ~8 % of the edge's
/// CPU on a small cache hit, BENCHMARKS.md), and under 100 they live on the stack.
pub const MAX_HEADERS: usize = 1000;

/// A client must finish its TLS handshake within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most TLS handshakes in progress at once: each costs CPU, and a flood of them must not
/// starve the requests of connections already open. Past it a connection waits (within
/// its handshake time) for a place.
const MAX_HANDSHAKES: usize = 256;

/// The first byte of a TLS connection (a handshake record).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Marks a request that arrived over TLS (a request extension: `aws:SecureTransport`, and the
/// scheme of the URLs a response names).
#[derive(Debug, Clone, Copy)]
pub struct Encrypted;

/// Connection-level protections against slow or abusive clients.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// A client must send its whole request head within this time (also closes idle
    /// keep-alive connections).
    pub header_read_timeout: Duration,
    /// Upper bound on the read buffer, which bounds the request head hyper will parse.
    pub max_buf_size: usize,
    /// Most connections open at once ([`default_max_connections`] when unset).
    pub max_connections: usize,
    /// Most connections open at once from one client address.
    pub max_connections_per_ip: usize,
}

impl ConnLimits {
    /// From the configuration keys the store and the edge share (seconds, bytes, counts;
    /// `max_connections` unset: [`default_max_connections`]).
    pub fn new(
        header_read_timeout_secs: u64,
        max_header_bytes: usize,
        max_connections: Option<usize>,
        max_connections_per_ip: usize,
    ) -> ConnLimits {
        ConnLimits {
            header_read_timeout: Duration::from_secs(header_read_timeout_secs),
            max_buf_size: (max_header_bytes * 4).max(256 << 10),
            max_connections: max_connections.unwrap_or_else(default_max_connections),
            max_connections_per_ip,
        }
    }
}

/// Three quarters of the open-file limit: the rest stays for blobs, the index, the cache and
/// connections to origins, so a flood of clients cannot make the server fail its own I/O.
pub fn default_max_connections() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1 << 16);
    (limit as usize / 4 * 3).max(64)
}

/// Open connections, in all and per client address.
#[derive(Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Counts one connection for as long as it lives.
struct Admitted {
    open: Arc<Mutex<Open>>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total -= 1;
        if let Some(n) = open.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Takes a place for a connection from `ip`, or None when a cap is reached.
fn admit(open: &Arc<Mutex<Open>>, ip: IpAddr, limits: &ConnLimits) -> Option<Admitted> {
    let mut o = open.lock().unwrap_or_else(|p| p.into_inner());
    let from_ip = o.per_ip.get(&ip).copied().unwrap_or(0);
    if o.total >= limits.max_connections || from_ip >= limits.max_connections_per_ip {
        return None;
    }
    o.total += 1;
    *o.per_ip.entry(ip).or_insert(0) += 1;
    Some(Admitted {
        open: Arc::clone(open),
        ip,
    })
}

/// An S3 error answer written straight to a connection that is then closed (before any HTTP
/// is served on it).
fn bare_error(status: &str, code: &str, message: &str, extra: &str) -> String {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// What a refused connection reads before it is closed: S3's answer to too many requests.
fn refusal() -> String {
    bare_error(
        "503 Service Unavailable",
        "SlowDown",
        "Too many connections; please reduce your request rate.",
        "retry-after: 1\r\n",
    )
}

/// Writes `answer` to `stream` (within a second) and closes it.
async fn answer_and_close(mut stream: TcpStream, answer: String) {
    let write = stream.write_all(answer.as_bytes());
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// A bound listener, plain or TLS.
pub struct Listener {
    pub tcp: TcpListener,
    /// Every connection is TLS (a plain HTTP request is answered with an error naming the
    /// problem, then closed).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Listener {
    pub fn plain(tcp: TcpListener) -> Listener {
        Listener { tcp, tls: None }
    }
}

/// Serves `router` on every listener until `shutdown` resolves, then lets in-flight requests
/// finish. The connection caps count the listeners' connections together; TLS handshakes are
/// counted into `handshakes`.
pub async fn serve(
    listeners: Vec<Listener>,
    router: axum::Router,
    limits: ConnLimits,
    handshakes_done: TlsHandshakes,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_buf_size)
        // hyper's default of 100 request headers (no `max_headers`): past it, its bare 431.
        // A head too large within 100 headers is `check_header_size`'s S3 error.
        .keep_alive(true);
    let mut auto = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    auto.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_buf_size)
        .keep_alive(true);
    auto.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_buf_size as u32)
        // Idle h2 connections are found out by pings, as idle h1 ones by the head timeout.
        .keep_alive_interval(Some(limits.header_read_timeout))
        .keep_alive_timeout(Duration::from_secs(20));
    let (http, auto) = (Arc::new(http), Arc::new(auto));
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let mut lanes = Lanes::start()?;
    tokio::pin!(shutdown);
    let open = Arc::new(Mutex::new(Open::default()));
    let mut accepts = futures::stream::select_all(listeners.into_iter().map(|listener| {
        let tls = listener.tls.map(tokio_rustls::TlsAcceptor::from);
        let tcp = incoming(listener.tcp);
        Box::pin(futures::StreamExt::map(tcp, move |accepted| {
            (accepted, tls.clone())
        }))
    }));
    loop {
        let ((stream, peer), tls) = tokio::select! {
            Some((accepted, tls)) = futures::StreamExt::next(&mut accepts) => match accepted {
                Ok(pair) => (pair, tls),
                Err(e) => {
                    // EMFILE and friends are transient: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Delayed-ACK interplay stalls small responses by ~40 ms without this (DESIGN.md).
        let _ = stream.set_nodelay(true);
        let Some(admitted) = admit(&open, peer.ip(), &limits) else {
            tracing::warn!(%peer, "connection refused: too many connections");
            tokio::spawn(answer_and_close(stream, refusal()));
            continue;
        };
        // Handlers read the peer address (the access log's client) as axum's ConnectInfo.
        let connected = router
            .clone()
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        // The stream moves to its lane's event loop.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "connection lost before it was served");
                continue;
            }
        };
        // The shutdown watcher is taken now: a TLS connection still in its handshake when the
        // server stops is simply dropped.
        let watcher = graceful.watcher();
        let Some(acceptor) = tls else {
            let service = TowerToHyperService::new(connected);
            let http = Arc::clone(&http);
            lanes.next().spawn(async move {
                let _admitted = admitted;
                let Ok(stream) = TcpStream::from_std(stream) else {
                    return;
                };
                let conn = http.serve_connection(TokioIo::new(stream), service);
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
            continue;
        };
        let service = TowerToHyperService::new(connected.layer(axum::Extension(Encrypted)));
        let (auto, handshakes) = (Arc::clone(&auto), Arc::clone(&handshakes));
        let handshakes_done = handshakes_done.clone();
        lanes.next().spawn(async move {
            let _admitted = admitted;
            let Ok(stream) = TcpStream::from_std(stream) else {
                return;
            };
            let handshake = handshake(&acceptor, &handshakes, stream);
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake);
            let stream = match handshake.await {
                Ok(Some(stream)) => {
                    let kind = stream.get_ref().1.handshake_kind();
                    handshakes_done.count(kind == Some(rustls::HandshakeKind::Resumed));
                    stream
                }
                Ok(None) => return,
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let conn = auto.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
    lanes.stop();
    Ok(())
}

/// The threads connections run on: one per core, each driving a current-thread runtime of
/// its own until [`Lanes::stop`] (or the process's end).
struct Lanes {
    handles: Vec<Handle>,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    next: usize,
}

impl Lanes {
    fn start() -> std::io::Result<Lanes> {
        let count = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut lanes = Lanes {
            handles: Vec::with_capacity(count),
            stops: Vec::with_capacity(count),
            next: 0,
        };
        for n in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            lanes.handles.push(runtime.handle().clone());
            lanes.stops.push(stop);
            std::thread::Builder::new()
                .name(format!("outpost-lane-{n}"))
                .spawn(move || {
                    let _ = runtime.block_on(stopped);
                })?;
        }
        Ok(lanes)
    }

    /// The lane for the next connection, in turn.
    fn next(&mut self) -> &Handle {
        self.next = (self.next + 1) % self.handles.len();
        &self.handles[self.next]
    }

    /// Ends every lane; what still runs there (connections still in their handshake, work
    /// their handlers spawned) is dropped with it.
    fn stop(self) {
        for stop in self.stops {
            let _ = stop.send(());
        }
    }
}

/// The connections a listener accepts, as a stream (the loop takes them from every listener).
fn incoming(
    tcp: TcpListener,
) -> impl futures::Stream<Item = std::io::Result<(TcpStream, std::net::SocketAddr)>> {
    futures::stream::unfold(tcp, |tcp| async move {
        let accepted = tcp.accept().await;
        Some((accepted, tcp))
    })
}

/// Answers a plain HTTP request sent to a TLS port, then closes. The request is read first
/// (as far as it came within a second) and the close waits for the client's: closing with
/// unread bytes would reset the connection and lose the answer.
async fn tell_plain_client(mut stream: TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut scratch = vec![0u8; 16 << 10];
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut scratch)).await;
    let answer = bare_error(
        "400 Bad Request",
        "InvalidRequest",
        "This port speaks TLS: use https://.",
        "",
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        while stream.read(&mut scratch).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
}

/// The TLS handshake of one connection; None when it failed (logged). A client speaking plain
/// HTTP to this port gets an answer saying so instead of a silent close. A connection takes
/// one of the `handshakes` places only once its client has begun: clients that connect and
/// send nothing (they are dropped at the handshake timeout) never keep others waiting.
async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    handshakes: &Semaphore,
    stream: TcpStream,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) if first[0] != TLS_HANDSHAKE_RECORD => {
            if first[0].is_ascii_alphabetic() {
                tell_plain_client(stream).await;
            }
            return None;
        }
        Ok(1) => {}
        _ => return None,
    }
    let _place = handshakes.acquire().await;
    match acceptor.accept(stream).await {
        Ok(stream) => Some(stream),
        Err(e) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
    }
}
