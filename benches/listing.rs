//! Listing benchmark: a bucket of many keys (default 1,000,000; `OUTPOST_BENCH_KEYS`), then
//! the time of the listings clients make on it: the first page, a page from the middle
//! (`start-after`), the root with a delimiter (folders rolled up), a small folder by prefix,
//! and a full walk with continuation tokens.
//!
//! Run with `cargo bench --bench listing`. Filling the bucket is most of the run time (empty
//! objects, 64 PUTs in flight: each PUT still commits durably). Figures in `BENCHMARKS.md`.

#[path = "common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{S3, spawn_outpost};

const BUCKET: &str = "listing";
const FOLDERS: usize = 100;

/// Key `i`: 100 top-level folders, each with 100 subfolders, objects spread across them, in
/// an order unrelated to the key order (so the index is not filled append-only).
fn key(i: usize) -> String {
    let j = i.wrapping_mul(2_654_435_761) % 1_000_003;
    format!(
        "f{:02}/s{:02}/obj-{j:07}-{i:07}",
        i % FOLDERS,
        (i / FOLDERS) % 100
    )
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let n: usize = std::env::var("OUTPOST_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let bin = common::outpost_bin();
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-listing");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let data = work.join("data");
    let (mut store, addr) = spawn_outpost(
        &bin,
        "store",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data",
            data.to_str().expect("utf-8 path"),
        ],
    )?;
    let s3 = Arc::new(S3::new(&addr, Bytes::new()));
    s3.ok("PUT", &format!("/{BUCKET}"), Bytes::new(), &[])
        .await?;

    println!("# Outpost listing benchmark\n");
    println!(
        "binary: {}\nkeys: {n} empty objects, 100 folders x 100 subfolders\n",
        bin.display()
    );
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (s3, next) = (Arc::clone(&s3), Arc::clone(&next));
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, anyhow::Error>(());
                    }
                    s3.ok("PUT", &format!("/{BUCKET}/{}", key(i)), Bytes::new(), &[])
                        .await?;
                }
            })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    let fill = started.elapsed();
    println!(
        "filled in {:.0} s ({:.0} PUT/s)\n",
        fill.as_secs_f64(),
        n as f64 / fill.as_secs_f64()
    );

    println!("| listing | keys + prefixes returned | time (median of 5) |");
    println!("|---|---|---|");
    let middle = key(n / 2);
    let cases = [
        ("first page (max-keys 1000)", "list-type=2".to_string()),
        (
            "page from the middle (start-after)",
            format!("list-type=2&start-after={}", enc(&middle)),
        ),
        (
            "root with delimiter / (100 folders)",
            "list-type=2&delimiter=%2F".to_string(),
        ),
        (
            "one folder with delimiter (100 subfolders)",
            "list-type=2&prefix=f42%2F&delimiter=%2F".to_string(),
        ),
        (
            "one subfolder by prefix",
            "list-type=2&prefix=f42%2Fs07%2F".to_string(),
        ),
        (
            "v1 page from the middle (marker)",
            format!("marker={}", enc(&middle)),
        ),
    ];
    for (name, query) in cases {
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            s3.ok("GET", &format!("/{BUCKET}?{query}"), Bytes::new(), &[])
                .await?;
            times.push(t.elapsed());
        }
        times.sort();
        let text = listing_count(&s3, &query).await?;
        println!("| {name} | {text} | {} |", ms(times[2]));
    }

    let t = Instant::now();
    let (mut pages, mut token) = (0, None::<String>);
    let mut seen = 0usize;
    loop {
        let mut query = "list-type=2".to_string();
        if let Some(t) = &token {
            query.push_str(&format!("&continuation-token={}", enc(t)));
        }
        let body = get_text(&s3, &format!("/{BUCKET}?{query}")).await?;
        pages += 1;
        seen += body.matches("<Key>").count();
        token = between(&body, "<NextContinuationToken>", "</NextContinuationToken>");
        if token.is_none() {
            break;
        }
    }
    let walk = t.elapsed();
    println!(
        "\nfull walk: {pages} pages, {seen} keys in {:.1} s ({:.1} ms per page)",
        walk.as_secs_f64(),
        walk.as_secs_f64() * 1e3 / pages as f64
    );
    anyhow::ensure!(seen == n, "walk saw {seen} keys, expected {n}");
    let _ = store.kill();
    let _ = store.wait();
    Ok(())
}

async fn get_text(s3: &S3, path: &str) -> anyhow::Result<String> {
    let req = s3.signed_request("GET", path, Bytes::new(), &[])?;
    let resp = s3.http.request(req).await?;
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = common::next_frame(&mut body).await {
        if let Ok(d) = frame?.into_data() {
            out.extend_from_slice(&d);
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

async fn listing_count(s3: &S3, query: &str) -> anyhow::Result<String> {
    let body = get_text(s3, &format!("/{BUCKET}?{query}")).await?;
    Ok(format!(
        "{} + {}",
        body.matches("<Key>").count(),
        body.matches("<CommonPrefixes>").count()
    ))
}

fn between(text: &str, open: &str, close: &str) -> Option<String> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(text[start..end].to_string())
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
