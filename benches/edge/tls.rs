//! The edge bench over TLS: cache hits on a TLS edge and on nginx's TLS server (wrk, TLS 1.3,
//! keep-alive), and new TLS connections per second with our own client (tokio-rustls):
//! connect, handshake, GET 1 KiB with `Connection: close`, read the answer; first with
//! resumption off (full handshakes), then on (the session tickets each server sends).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use outpost_store::tls::{LocalCa, TlsFiles};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::common::{Killed, path, spawn_edge};
use super::{BUCKET, hit_rows};

/// Connections in flight at once in the handshake rows.
const HANDSHAKE_CONCURRENCY: usize = 16;

/// An edge with `tls` on its listener in front of `origin`; its address.
pub fn start_edge(
    bin: &Path,
    cache_dir: &Path,
    origin: &str,
    tls: &TlsFiles,
) -> anyhow::Result<(Killed, String)> {
    let tls_flags = ["--tls-cert", path(&tls.cert), "--tls-key", path(&tls.key)];
    let (edge, addr) = spawn_edge(bin, origin, cache_dir, &tls_flags)?;
    Ok((Killed(edge), addr))
}

/// The TLS rows: `peers` are (name, address) of TLS servers serving the bench's bucket.
pub async fn run(
    ca: &LocalCa,
    peers: &[(&str, &str)],
    duration: &str,
    store: &str,
) -> anyhow::Result<()> {
    let full = connector(ca, false)?;
    let resumed = connector(ca, true)?;
    println!("\n## Cache hits over TLS (TLS 1.3, ECDSA P-256, keep-alive), concurrency 64\n");
    let warm = async |addr: &str, path: &str| get_once(&full, addr, path).await.map(|_| ());
    hit_rows(peers, "https", duration, store, warm).await?;

    let secs = duration.trim_end_matches('s').parse().unwrap_or(10);
    let path = format!("/{BUCKET}/1KiB");
    println!(
        "\n## New TLS connections per second (concurrency {HANDSHAKE_CONCURRENCY}: connect, \
         handshake, GET 1 KiB, close)\n"
    );
    println!("| handshakes | server | connections/s | resumed |");
    println!("|---|---|---|---|");
    for (kind, connector) in [("full", &full), ("resumed", &resumed)] {
        for (name, addr) in peers {
            let (rate, resumed) = connections(connector, addr, &path, secs).await?;
            println!("| {kind} | {name} | {rate:.0} | {:.0} % |", resumed * 100.0);
        }
    }
    Ok(())
}

/// A client trusting `ca`, HTTP/1.1 by ALPN, with or without session resumption.
fn connector(ca: &LocalCa, resume: bool) -> anyhow::Result<tokio_rustls::TlsConnector> {
    Ok(tokio_rustls::TlsConnector::from(
        super::common::tls_client_config(&ca.ca, resume)?,
    ))
}

/// One request on a new connection; whether its handshake was resumed.
async fn get_once(
    connector: &tokio_rustls::TlsConnector,
    addr: &str,
    path: &str,
) -> anyhow::Result<bool> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost")?;
    let mut tls = connector.connect(name, tcp).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    // A server may close without close_notify once it has answered: what was read counts.
    let _ = tls.read_to_end(&mut answer).await;
    anyhow::ensure!(
        answer.starts_with(b"HTTP/1.1 200"),
        "GET {path} at {addr}: {}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
    let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    Ok(resumed)
}

/// New connections per second for `secs` seconds, and the share of them that resumed.
async fn connections(
    connector: &tokio_rustls::TlsConnector,
    addr: &str,
    path: &str,
    secs: u64,
) -> anyhow::Result<(f64, f64)> {
    // Warm up, so that the resumed rows start with tickets in hand.
    for _ in 0..HANDSHAKE_CONCURRENCY {
        get_once(connector, addr, path).await?;
    }
    let (done, resumed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..HANDSHAKE_CONCURRENCY)
        .map(|_| {
            let (connector, addr, path) = (connector.clone(), addr.to_owned(), path.to_owned());
            let (done, resumed) = (Arc::clone(&done), Arc::clone(&resumed));
            tokio::spawn(async move {
                while Instant::now() < until {
                    if get_once(&connector, &addr, &path).await? {
                        resumed.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await?.context("a handshake-row connection failed")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (done, resumed) = (
        done.load(Ordering::Relaxed),
        resumed.load(Ordering::Relaxed),
    );
    Ok((done as f64 / elapsed, resumed as f64 / done.max(1) as f64))
}
