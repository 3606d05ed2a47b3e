//! The HTTP/1.1 accept loop shared by the store and the edge: a bound listener in, a shutdown
//! future to stop (so tests bind port 0 and stop cleanly).

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Request (and, at the edge, origin answer) headers hyper parses; more get its bare 431.
/// hyper sizes its parse buffers by it (64 bytes a header, so 64 KB per request head).
pub const MAX_HEADERS: usize = 1000;

/// Connection-level protections against slow or abusive clients.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// A client must send its whole request head within this time (also closes idle
    /// keep-alive connections).
    pub header_read_timeout: Duration,
    /// Upper bound on the read buffer, which bounds the request head hyper will parse.
    pub max_buf_size: usize,
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
        // Past hyper's default of 100 it answers a bare 431, which cannot be S3 XML: a head
        // too large in many small headers is left to `check_header_size` instead.
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    tokio::pin!(shutdown);
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
        let service = TowerToHyperService::new(router.clone());
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
}
