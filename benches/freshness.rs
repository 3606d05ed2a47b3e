//! Freshness benchmark: how soon an overwrite acknowledged by the store is served by every
//! edge that follows its change feed, and whether any edge serves old bytes past a deadline.
//!
//! ```text
//!   writer ── PUT key (version v+1), fixed rate ──► store (release) ──► change feed
//!                                                     │                 │ │ │
//!   readers ── GET key, one per edge and key, polling ─► edge 1   edge 2   edge 3
//! ```
//! One store and three edges (release binary, defaults: TTLs of a day, so only the feed makes
//! them fresh). A writer overwrites a few small objects in turn at a fixed rate, each body
//! naming its version (known by its ETag); a reader per edge and key polls that key at the
//! edge and records when each answer started and ended and which version it carried.
//! Afterwards, per edge and per acknowledged write: propagation = the end of the first read
//! at that edge returning that version or a newer one, minus the moment the store's 200 for
//! the PUT arrived (0 when a read saw it first); p50/p99/max over all of them. A stale read:
//! one that started more than the deadline (1 s) after a write was acknowledged and still
//! returned an older version (target 0).
//!
//! Run with `cargo bench --bench freshness`; the method and the latest figures are in
//! `BENCHMARKS.md`. Knobs: `OUTPOST_BENCH_BIN`, `OUTPOST_BENCH_SECS` (how long the writer
//! writes, default 20), `OUTPOST_BENCH_WRITES_PER_SEC` (default 10), `OUTPOST_BENCH_KEYS`
//! (default 4), `OUTPOST_BENCH_POLL_MS` (pause between a reader's GETs, default 5),
//! `OUTPOST_BENCH_EDGES` (default 3), `OUTPOST_BENCH_FEED=off` (edges with `feed = false`: what
//! the figures look like without the feed, to show the bench sees stale reads when there are).

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use common::{Killed, S3, SliceBody, md5_hex, metric_sum, path, spawn_edge, spawn_store};

const BUCKET: &str = "freshness";
/// What the guarantee promises: no old bytes served this long after the acknowledgement.
const DEADLINE: Duration = Duration::from_secs(1);
/// Readers go on this long after the last write, so the last writes can arrive.
const SETTLE: Duration = Duration::from_secs(2);
const BODY: usize = 1024;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

/// One read at an edge: when it was sent and answered, and the version it carried.
struct Read {
    start: Instant,
    end: Instant,
    version: u32,
}

/// The versions written, by ETag (filled in before each PUT is sent: a reader may see the new
/// bytes before the writer sees the store's answer).
type Versions = Arc<Mutex<HashMap<String, u32>>>;

async fn run() -> anyhow::Result<()> {
    let bin = common::outpost_bin();
    let secs = knob("OUTPOST_BENCH_SECS", 20);
    let rate = knob("OUTPOST_BENCH_WRITES_PER_SEC", 10).max(1);
    let keys = knob("OUTPOST_BENCH_KEYS", 4).max(1) as usize;
    let poll = Duration::from_millis(knob("OUTPOST_BENCH_POLL_MS", 5));
    let edges = knob("OUTPOST_BENCH_EDGES", 3).max(1) as usize;
    let feed = std::env::var("OUTPOST_BENCH_FEED").map_or(true, |v| v != "off");
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-freshness");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let edge_config = work.join("edge.toml");
    fs::write(&edge_config, format!("[edge]\nfeed = {feed}\n"))?;

    println!("# Outpost freshness benchmark\n");
    println!("binary: {}", bin.display());
    println!(
        "{edges} edges, {keys} objects of {BODY} bytes overwritten in turn at {rate}/s for \
         {secs} s, one reader per edge and object (pause {} ms between GETs)\n",
        poll.as_millis()
    );
    println!(
        "edges follow the feed: {feed}; load average at the start: {}",
        load()
    );
    let data_dir = work.join("store");
    let (store, store_addr) = spawn_store(&bin, &data_dir)?;
    let _store = Killed(store);
    let origin = format!("http://{store_addr}");
    let mut running = Vec::new();
    let mut edge_addrs = Vec::new();
    for i in 0..edges {
        let cache = work.join(format!("edge-{i}"));
        let config = ["--config", path(&edge_config)];
        let (child, addr) = spawn_edge(&bin, &origin, &cache, &config)?;
        running.push(Killed(child));
        edge_addrs.push(addr);
    }
    let store_s3 = S3::new(&store_addr, Bytes::new());
    store_s3.public_bucket(BUCKET).await?;
    let versions: Versions = Arc::default();
    for k in 0..keys {
        put(&store_s3, &versions, k, 0).await?;
    }
    if feed {
        for addr in &edge_addrs {
            following(addr).await?;
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for addr in &edge_addrs {
        for k in 0..keys {
            let (addr, versions, stop) = (addr.clone(), versions.clone(), stop.clone());
            readers.push(tokio::spawn(async move {
                let reads = read_loop(&addr, k, &versions, &stop, poll).await;
                (k, reads)
            }));
        }
    }
    // Every reader has the first version before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut acks: Vec<Vec<(u32, Instant)>> = vec![Vec::new(); keys];
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate as u32);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut written = 0u32;
    while started.elapsed() < Duration::from_secs(secs) {
        tick.tick().await;
        let k = written as usize % keys;
        let version = written / keys as u32 + 1;
        put(&store_s3, &versions, k, version).await?;
        acks[k].push((version, Instant::now()));
        written += 1;
    }
    let writing = started.elapsed();
    tokio::time::sleep(SETTLE).await;
    stop.store(true, Ordering::Relaxed);

    let mut delays = Vec::new();
    let (mut stale, mut total_reads, mut unseen) = (0usize, 0usize, 0usize);
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    for reader in readers {
        let (k, reads) = reader.await?;
        let reads = reads?;
        total_reads += reads.0.len();
        for (outcome, n) in reads.1 {
            *outcomes.entry(outcome).or_default() += n;
        }
        let reads = reads.0;
        for &(version, acked) in &acks[k] {
            match reads.iter().find(|r| r.version >= version) {
                Some(r) => delays.push(r.end.saturating_duration_since(acked)),
                None => unseen += 1,
            }
        }
        for r in &reads {
            // The newest version acknowledged more than the deadline before this read began.
            let due = acks[k]
                .iter()
                .take_while(|(_, acked)| *acked + DEADLINE < r.start)
                .last();
            if due.is_some_and(|(version, _)| r.version < *version) {
                stale += 1;
            }
        }
    }
    delays.sort();
    // The q-quantile, "-" when no write was seen at all.
    let at = |q: f64| {
        let rank = (delays.len() as f64 * q).ceil() as usize;
        let d = delays.get(rank.clamp(1, delays.len().max(1)) - 1);
        d.map_or("-".into(), |d| {
            format!("{:.1} ms", d.as_secs_f64() * 1000.0)
        })
    };
    println!("load average at the end: {}\n", load());
    println!(
        "writes: {written} in {:.1} s ({:.1}/s acknowledged); reads: {total_reads} ({:.0}/s)\n",
        writing.as_secs_f64(),
        written as f64 / writing.as_secs_f64(),
        total_reads as f64 / (writing + SETTLE).as_secs_f64()
    );
    println!(
        "| edges | samples (edge × write) | p50 | p99 | max | stale reads after {} s | never seen |",
        DEADLINE.as_secs()
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {edges} | {} | {} | {} | {} | {stale} | {unseen} |",
        delays.len(),
        at(0.50),
        at(0.99),
        at(1.0)
    );
    let mut outcomes: Vec<_> = outcomes.into_iter().collect();
    outcomes.sort();
    let outcomes: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o}: {n}")).collect();
    println!("\nX-Cache of the reads: {}", outcomes.join(", "));
    println!(
        "\nTargets on this machine: p50 ≤ 100 ms, p99 ≤ 1 s, 0 stale reads. Propagation runs \
         from the store's 200 for the PUT to the end of the first read returning the new \
         bytes, so it includes up to one polling pause ({} ms) and one GET.",
        poll.as_millis()
    );
    Ok(())
}

/// `/proc/loadavg`'s 1, 5 and 15 minute figures (the machine is shared: say how busy it was).
fn load() -> String {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The body of `version` of object `k`: names both, padded to [`BODY`] bytes.
fn body(k: usize, version: u32) -> Bytes {
    let mut text = format!("object {k} version {version} ").into_bytes();
    text.resize(BODY, b'.');
    Bytes::from(text)
}

async fn put(s3: &S3, versions: &Versions, k: usize, version: u32) -> anyhow::Result<()> {
    let body = body(k, version);
    versions.lock().unwrap().insert(md5_hex(&body), version);
    s3.ok("PUT", &format!("/{BUCKET}/k{k}"), body, &[]).await?;
    Ok(())
}

/// Anonymous GETs of object `k` at the edge `addr` until `stop`: each read, and a count of
/// its X-Cache outcomes.
async fn read_loop(
    addr: &str,
    k: usize,
    versions: &Versions,
    stop: &AtomicBool,
    poll: Duration,
) -> anyhow::Result<(Vec<Read>, HashMap<String, usize>)> {
    let client = S3::new(addr, Bytes::new());
    let mut reads = Vec::new();
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let request = http::Request::get(format!("http://{addr}/{BUCKET}/k{k}"))
            .header("host", addr)
            .body(SliceBody::new(Bytes::new()))?;
        let start = Instant::now();
        let response = client
            .http
            .request(request)
            .await
            .context("GET at an edge")?;
        let status = response.status();
        let etag = header(&response, "etag").trim_matches('"').to_owned();
        let cache = header(&response, "x-cache");
        let cache = cache.split(' ').next().unwrap_or("").to_owned();
        let mut body = response.into_body();
        while let Some(frame) = common::next_frame(&mut body).await {
            frame.context("reading a GET's body")?;
        }
        let end = Instant::now();
        if !status.is_success() {
            bail!("GET k{k} at {addr} answered {status}");
        }
        let Some(&version) = versions.lock().unwrap().get(&etag) else {
            bail!("GET k{k} at {addr}: an ETag never written ({etag})");
        };
        *outcomes.entry(cache).or_default() += 1;
        reads.push(Read {
            start,
            end,
            version,
        });
        tokio::time::sleep(poll).await;
    }
    Ok((reads, outcomes))
}

fn header(response: &http::Response<hyper::body::Incoming>, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// Waits until the edge at `addr` has heard from the store's feed (its first contact counts a
/// resync).
async fn following(addr: &str) -> anyhow::Result<()> {
    let client = S3::new(addr, Bytes::new());
    let started = Instant::now();
    loop {
        let request = http::Request::get(format!("http://{addr}/_outpost/metrics"))
            .header("host", addr)
            .body(SliceBody::new(Bytes::new()))?;
        let response = client.http.request(request).await?;
        let mut body = response.into_body();
        let mut text = Vec::new();
        while let Some(frame) = common::next_frame(&mut body).await {
            if let Ok(data) = frame?.into_data() {
                text.extend_from_slice(&data);
            }
        }
        let text = String::from_utf8_lossy(&text);
        if metric_sum(&text, "outpost_edge_feed_resyncs_total", &[]) >= 1.0 {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the edge at {addr} never followed the store's feed");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
