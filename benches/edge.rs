//! Edge benchmark: cache hits of 1 KiB, 64 KiB and 1 MiB objects at concurrency 64, side by
//! side with nginx `proxy_cache` in front of the same store in the same run; then a miss
//! storm: 1000 concurrent requests for a cold 64 MiB object through each, counting origin
//! requests and time to first byte. Over TLS (`edge/tls.rs`): the same hits on a TLS edge and
//! nginx's TLS server (TLS 1.3, one ECDSA P-256 certificate, keep-alive), and new TLS
//! connections per second, full handshakes then resumed ones.
//!
//! Run with `cargo bench --bench edge` (installs nginx-light and wrk from Debian's packages
//! when they are missing; needs root for that). The method and the latest figures are in
//! `BENCHMARKS.md`.
//!
//! ```text
//!   store (release) ◄── outpost edge (memory tier, defaults) ◄── wrk -t2 -c64 -d10s --latency
//!                   ◄── nginx proxy_cache (disk + page cache, proxy_cache_lock on) ◄── same wrk
//! ```
//! Honesty notes, printed with the figures too: client, edge, nginx and store share the
//! machine's 2 cores; both caches are warmed before measuring and the store's request counter
//! confirms no origin traffic during a hit cell; the requests are anonymous GETs of a public
//! bucket (no signature to check on either side).
//!
//! Knobs: `OUTPOST_BENCH_BIN`, `OUTPOST_BENCH_DURATION` (wrk duration, default `10s`),
//! `OUTPOST_BENCH_STORM` (storm size, default 1000).

#[path = "common/mod.rs"]
mod common;
#[path = "edge/tls.rs"]
mod tls;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use common::{
    Killed, S3, SliceBody, md5_hex, metric_sum, next_frame, path, spawn_edge, spawn_store,
    tool_version,
};
use outpost_store::tls::{LocalCa, TlsFiles};
use rand::{RngCore, SeedableRng};

const BUCKET: &str = "edgebench";
const SIZES: [(&str, usize); 3] = [("1 KiB", 1 << 10), ("64 KiB", 64 << 10), ("1 MiB", 1 << 20)];
const STORM_SIZE: usize = 64 << 20;
/// Storm readers read this much of the body (the first slices), then hang up; a few read all
/// of it and check its MD5.
const STORM_READ: usize = 1 << 20;
const STORM_FULL_READERS: usize = 4;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    ensure_tools()?;
    let bin = common::outpost_bin();
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-edge");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let duration = std::env::var("OUTPOST_BENCH_DURATION").unwrap_or_else(|_| "10s".into());
    let storm: usize = std::env::var("OUTPOST_BENCH_STORM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);

    println!("# Outpost edge benchmark\n");
    println!("binary: {}", bin.display());
    println!("nginx: {}", tool_version("nginx", &["-v"]));
    println!("load: wrk -t2 -c64 -d{duration} --latency, anonymous GETs of a public bucket\n");

    let data_dir = work.join("store");
    let (store, store_addr) = spawn_store(&bin, &data_dir)?;
    let _store = Killed(store);
    let cache_dir = work.join("edge");
    let origin = format!("http://{store_addr}");
    let (edge, edge_addr) = spawn_edge(&bin, &origin, &cache_dir, &[])?;
    let _edge = Killed(edge);
    // One ECDSA P-256 certificate for both TLS servers (what `outpost up --tls` makes).
    let ca = LocalCa::in_dir(&work.join("tls"))?;
    let (_nginx, nginx_addr, nginx_tls_addr) =
        start_nginx(&work.join("nginx"), &store_addr, &ca.files)?;

    let mut seed = rand::rngs::StdRng::seed_from_u64(7);
    let mut data = vec![0u8; STORM_SIZE];
    seed.fill_bytes(&mut data);
    let data = Bytes::from(data);
    let s3 = Arc::new(S3::new(&store_addr, data.clone()));
    s3.public_bucket(BUCKET).await?;
    let cache = [("cache-control", "public, max-age=3600")];
    for (label, size) in SIZES {
        let key = format!("/{BUCKET}/{}", label.replace(' ', ""));
        s3.ok("PUT", &key, data.slice(..size), &cache).await?;
    }

    println!("## Cache hits, concurrency 64\n");
    let peers = [
        ("outpost edge", edge_addr.as_str()),
        ("nginx proxy_cache", nginx_addr.as_str()),
    ];
    let warm = async |addr: &str, path: &str| anonymous_get(addr, path).await.map(|_| ());
    hit_rows(&peers, "http", &duration, &store_addr, warm).await?;

    let tls_edge = tls::start_edge(&bin, &work.join("edge-tls"), &origin, &ca.files)?;
    let tls_peers = [
        ("outpost edge", tls_edge.1.as_str()),
        ("nginx proxy_cache", nginx_tls_addr.as_str()),
    ];
    tls::run(&ca, &tls_peers, &duration, &store_addr).await?;
    drop(tls_edge);

    println!("\n## Miss storm: {storm} concurrent GETs of a cold 64 MiB object\n");
    println!("| server | origin GETs | TTFB p50 | TTFB p99 | TTFB max | all answered in |");
    println!("|---|---|---|---|---|---|");
    s3.ok("PUT", &format!("/{BUCKET}/storm.bin"), data.clone(), &cache)
        .await?;
    let expected_md5 = md5_hex(&data);
    for (name, addr) in peers {
        let before = origin_gets(&store_addr).await?;
        let r = miss_storm(addr, &format!("/{BUCKET}/storm.bin"), storm, &expected_md5).await?;
        let after = origin_gets(&store_addr).await?;
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            after - before,
            ms(r.p50),
            ms(r.p99),
            ms(r.max),
            ms(r.wall)
        );
    }
    println!(
        "\nMethod: {STORM_READ} bytes read per storm request (then the connection is dropped), \
         {STORM_FULL_READERS} readers read the whole object and check its MD5; origin GETs from \
         the store's outpost_s3_requests_total."
    );
    Ok(())
}

/// One table of cache-hit cells, a row per size and peer: each peer is warmed with two
/// `warm` GETs, then loaded by wrk at `scheme://addr` in turn (who goes first alternates by
/// size, so neither always gets the warmer machine); the store's GET count around each cell
/// shows whether it reached the origin.
async fn hit_rows(
    peers: &[(&str, &str)],
    scheme: &str,
    duration: &str,
    store: &str,
    warm: impl AsyncFn(&str, &str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    println!("| object | server | requests/s | MiB/s | p50 | p99 |");
    println!("|---|---|---|---|---|---|");
    for (i, (label, _)) in SIZES.iter().enumerate() {
        let path = format!("/{BUCKET}/{}", label.replace(' ', ""));
        for (_, addr) in peers {
            for _ in 0..2 {
                warm(addr, &path).await?;
            }
        }
        let mut order = peers.to_vec();
        if i % 2 == 1 {
            order.reverse();
        }
        let before = origin_gets(store).await?;
        let mut rows = Vec::new();
        for (name, addr) in order {
            rows.push((name, wrk(&format!("{scheme}://{addr}{path}"), duration)?));
        }
        let after = origin_gets(store).await?;
        rows.sort_by_key(|(name, _)| *name != "outpost edge");
        for (name, r) in rows {
            println!(
                "| {label} | {name} | {:.0} | {:.1} | {} | {} |",
                r.requests_per_sec, r.mib_per_sec, r.p50, r.p99
            );
        }
        if after != before {
            println!(
                "| | (origin GETs during the cell: {}) | | | | |",
                after - before
            );
        }
    }
    Ok(())
}

/// nginx and wrk come from Debian's packages.
fn ensure_tools() -> anyhow::Result<()> {
    let missing: Vec<&str> = [("nginx", "nginx-light"), ("wrk", "wrk")]
        .into_iter()
        .filter(|(tool, _)| {
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .map(|o| !o.status.success())
                .unwrap_or(true)
        })
        .map(|(_, package)| package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("installing {missing:?} from Debian's packages");
    let status = Command::new("sh")
        .args([
            "-c",
            &format!(
                "apt-get update -qq && apt-get install -y -qq {}",
                missing.join(" ")
            ),
        ])
        .status()?;
    anyhow::ensure!(
        status.success(),
        "could not install {missing:?} (root and apt needed)"
    );
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The nginx the bench started: a master (`daemon off`, our child) and the workers it forks.
/// Killing the master alone would orphan the workers, still serving the port after the bench
/// exits, so dropping this (also while a panic unwinds) asks the master for its fast shutdown
/// (SIGTERM: it stops its workers and waits for them); a master still there after 10 s is
/// killed together with the workers it had. A Ctrl-C reaches nginx itself: it shares the
/// bench's process group, and SIGINT is a fast shutdown for nginx too.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let master = self.0.id();
        signal("TERM", master);
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(None) = self.0.try_wait() {
            if Instant::now() > deadline {
                for worker in children_of(master) {
                    signal("KILL", worker);
                }
                let _ = self.0.kill();
                let _ = self.0.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn signal(name: &str, pid: u32) {
    let _ = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .status();
}

/// Processes whose parent is `pid` (field 4 of `/proc/N/stat`, after the parenthesised name).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|n| {
            fs::read_to_string(format!("/proc/{n}/stat")).is_ok_and(|stat| {
                let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
                rest.split_whitespace().nth(1) == Some(pid.to_string().as_str())
            })
        })
        .collect()
}

/// nginx as a caching reverse proxy in front of the store: the configuration a CDN operator
/// would start from (disk cache, keep-alive upstream, cache lock against miss storms).
/// Beside it, the same on TLS 1.3 with `tls`'s certificate (its address is the third value).
fn start_nginx(dir: &Path, store: &str, tls: &TlsFiles) -> anyhow::Result<(Nginx, String, String)> {
    fs::create_dir_all(dir)?;
    let (port, tls_port) = (free_port()?, free_port()?);
    let d = dir.display();
    let (cert, key) = (tls.cert.display(), tls.key.display());
    let conf = format!(
        r#"daemon off;
worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  proxy_cache_path {d}/cache levels=1:2 keys_zone=bench:64m max_size=4g inactive=1h use_temp_path=off;
  upstream store {{ server {store}; keepalive 64; }}
  ssl_protocols TLSv1.3;
  ssl_certificate {cert};
  ssl_certificate_key {key};
  ssl_session_cache shared:TLS:16m;
  ssl_session_tickets on;
  server {{
    listen 127.0.0.1:{port} reuseport;
    listen 127.0.0.1:{tls_port} ssl reuseport;
    location / {{
      proxy_pass http://store;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench;
      proxy_cache_valid 200 1h;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 120s;
      proxy_cache_lock_age 120s;
      add_header X-Cache-Status $upstream_cache_status;
    }}
  }}
}}
"#
    );
    let conf_path = dir.join("nginx.conf");
    fs::write(&conf_path, conf)?;
    let nginx = Nginx(
        Command::new("nginx")
            .args(["-c", path(&conf_path), "-e", &format!("{d}/error.log")])
            .stdin(Stdio::null())
            .spawn()
            .context("starting nginx")?,
    );
    let (addr, tls_addr) = (format!("127.0.0.1:{port}"), format!("127.0.0.1:{tls_port}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    for addr in [&addr, &tls_addr] {
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                bail!("nginx did not listen on {addr}; see {d}/error.log");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok((nginx, addr, tls_addr))
}

async fn anonymous_get(addr: &str, path: &str) -> anyhow::Result<u64> {
    let client = S3::new(addr, Bytes::new());
    let req = http::Request::get(format!("http://{addr}{path}"))
        .header("host", addr)
        .body(SliceBody::new(Bytes::new()))?;
    let out = client.call(req, false).await?;
    anyhow::ensure!(
        out.status == 200,
        "GET {path} via {addr}: {} {}",
        out.status,
        out.error_body
    );
    Ok(out.bytes)
}

async fn origin_gets(store: &str) -> anyhow::Result<f64> {
    let client = S3::new(store, Bytes::new());
    let req = http::Request::get(format!("http://{store}/_outpost/metrics"))
        .header("host", store)
        .body(SliceBody::new(Bytes::new()))?;
    let resp = client.http.request(req).await?;
    let mut body = resp.into_body();
    let mut text = Vec::new();
    while let Some(frame) = next_frame(&mut body).await {
        if let Ok(d) = frame?.into_data() {
            text.extend_from_slice(&d);
        }
    }
    let text = String::from_utf8_lossy(&text);
    Ok(metric_sum(
        &text,
        "outpost_s3_requests_total",
        &[("operation", "GetObject")],
    ))
}

struct WrkResult {
    requests_per_sec: f64,
    mib_per_sec: f64,
    p50: String,
    p99: String,
}

fn wrk(url: &str, duration: &str) -> anyhow::Result<WrkResult> {
    let out = Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{duration}"), "--latency", url])
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix).map(|v| v.trim().to_string()))
    };
    if text.contains("Non-2xx") {
        bail!("wrk saw errors against {url}:\n{text}");
    }
    let rps = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .context("wrk Requests/sec")?;
    let transfer = field("Transfer/sec:").context("wrk Transfer/sec")?;
    Ok(WrkResult {
        requests_per_sec: rps,
        mib_per_sec: to_mib(&transfer),
        p50: field("50%").unwrap_or_default(),
        p99: field("99%").unwrap_or_default(),
    })
}

/// wrk's `12.34MB` (binary multiples) → MiB.
fn to_mib(v: &str) -> f64 {
    let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().unwrap_or(0.0);
    match unit {
        "GB" => n * 1024.0,
        "MB" => n,
        "KB" => n / 1024.0,
        _ => n / (1024.0 * 1024.0),
    }
}

struct Storm {
    p50: Duration,
    p99: Duration,
    max: Duration,
    wall: Duration,
}

async fn miss_storm(addr: &str, path: &str, n: usize, expected_md5: &str) -> anyhow::Result<Storm> {
    let client = Arc::new(S3::new(addr, Bytes::new()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (client, url, addr) = (
                Arc::clone(&client),
                format!("http://{addr}{path}"),
                addr.to_string(),
            );
            let expected = expected_md5.to_string();
            tokio::spawn(async move {
                let t0 = Instant::now();
                let req = http::Request::get(url)
                    .header("host", addr)
                    .body(SliceBody::new(Bytes::new()))?;
                let resp = client.http.request(req).await?;
                anyhow::ensure!(resp.status() == 200, "storm GET answered {}", resp.status());
                let mut body = resp.into_body();
                let mut first = None;
                let full = i < STORM_FULL_READERS;
                let mut hasher = full.then(md5::Md5::default);
                let mut read = 0;
                while let Some(frame) = next_frame(&mut body).await {
                    if let Ok(d) = frame?.into_data() {
                        first.get_or_insert_with(|| t0.elapsed());
                        read += d.len();
                        if let Some(h) = hasher.as_mut() {
                            md5::Digest::update(h, &d);
                        }
                        if !full && read >= STORM_READ {
                            break;
                        }
                    }
                }
                if let Some(h) = hasher {
                    let got = hex::encode(md5::Digest::finalize(h));
                    anyhow::ensure!(got == expected, "storm body differs (read {read} bytes)");
                }
                first.context("no body")
            })
        })
        .collect();
    let mut ttfb = Vec::with_capacity(n);
    for t in tasks {
        ttfb.push(t.await??);
    }
    let wall = started.elapsed();
    ttfb.sort();
    let at = |p: f64| ttfb[((ttfb.len() as f64 * p) as usize).min(ttfb.len() - 1)];
    Ok(Storm {
        p50: at(0.50),
        p99: at(0.99),
        max: *ttfb.last().expect("storm has requests"),
        wall,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}
