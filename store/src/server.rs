//! The HTTP/1.1 accept loop shared by the store and the edge: a bound listener in, a shutdown
//! future to stop (so tests bind port 0 and stop cleanly). It caps connections, in all and per
//! client address, so that idle or slow connections cannot use up the process's descriptors.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Headers of an origin's answer the edge's client parses (an object's answer carries its
/// metadata headers). Requests are parsed with hyper's default of 100 instead: hyper sets up
/// its parse buffers for the whole count on every request head (1000 cost ~8 % of the edge's
/// CPU on a small cache hit, BENCHMARKS.md), and under 100 they live on the stack.
pub const MAX_HEADERS: usize = 1000;

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

/// What a refused connection reads before it is closed: S3's answer to too many requests.
fn refusal() -> String {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Too many connections; please reduce your request rate.</Message></Error>";
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ConnLimits,
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
    tokio::pin!(shutdown);
    let open = Arc::new(Mutex::new(Open::default()));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
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
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut stream = stream;
                let refusal = refusal();
                let write = stream.write_all(refusal.as_bytes());
                let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
            });
            continue;
        };
        // Handlers read the peer address (the access log's client) as axum's ConnectInfo.
        let connected = router
            .clone()
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        let service = TowerToHyperService::new(connected);
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _admitted = admitted;
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
}
