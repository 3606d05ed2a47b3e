//! `outpost speedtest --direct URL --edge URL`: the same uploads straight to a store and
//! through an edge, side by side (what AWS's speed-comparison page does for S3 Transfer
//! Acceleration).
//!
//! Each size is uploaded like aws-cli would: one PUT below 8 MiB, else a multipart upload of
//! 8 MiB parts, 10 at a time. Direct goes first, then the edge, each timed from the first
//! request to the final answer; the two ETags must match (same bytes, same parts) and each
//! object is deleted afterwards. A progress line shows on a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use axum::body::Body;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::{HeaderMap, Method};
use http_body_util::BodyExt;
use outpost_gateway::origin::{OriginGroup, OriginRequest, OriginSettings};
use rand::{RngCore, SeedableRng};

const MIB: u64 = 1 << 20;
/// aws-cli's defaults: multipart from this size on, parts of this size, this many at once.
const PART: u64 = 8 * MIB;
const PARALLEL: usize = 10;
/// Request bodies are handed out in pieces of this size (the progress display's grain).
const PIECE: usize = 256 << 10;

#[derive(clap::Args)]
pub struct SpeedtestArgs {
    /// The store, e.g. http://store.example:9000.
    #[arg(long)]
    direct: String,
    /// An edge in front of that store, e.g. http://edge.example:9080.
    #[arg(long)]
    edge: String,
    /// Bucket for the test objects (created when missing; the objects are deleted after).
    #[arg(long, default_value = "outpost-speedtest")]
    bucket: String,
    /// Sizes to upload, in MiB.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 64])]
    sizes_mib: Vec<u64>,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    access_key_id: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: String,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
}

/// One endpoint and a signing client for it.
struct Target {
    name: &'static str,
    client: OriginGroup,
}

pub async fn run(args: SpeedtestArgs) -> anyhow::Result<()> {
    // https:// endpoints are verified against the system's roots.
    let tls = outpost_gateway::origin::tls::client_config(None, false)?;
    let target = |name, url: &str| -> anyhow::Result<Target> {
        let settings = OriginSettings {
            tls: std::sync::Arc::clone(&tls),
            timeout: Duration::from_secs(30),
            response_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            retry_after: Duration::from_secs(1),
            access_key_id: args.access_key_id.clone(),
            secret_access_key: args.secret_access_key.clone(),
            region: args.region.clone(),
        };
        let client = OriginGroup::new(&[url.trim_end_matches('/').to_string()], settings)
            .with_context(|| format!("--{name} {url}"))?;
        Ok(Target { name, client })
    };
    let targets = [target("direct", &args.direct)?, target("edge", &args.edge)?];
    let bucket = &args.bucket;
    targets[0].ensure_bucket(bucket).await?;

    // One random block; every part is (a prefix of) it.
    let mut block = vec![0u8; PART as usize];
    rand::rngs::StdRng::seed_from_u64(1).fill_bytes(&mut block);
    let block = Bytes::from(block);

    println!(
        "Uploading to {} (direct) and {} (edge)\n",
        args.direct, args.edge
    );
    let mut rows = Vec::new();
    for &mib in &args.sizes_mib {
        let size = mib * MIB;
        let mut results = Vec::new();
        for t in &targets {
            let key = format!("speedtest-{mib}MiB-{}", t.name);
            let progress = Progress::start(format!("{mib} MiB via {}", t.name), size);
            let started = Instant::now();
            let etag = t.upload(bucket, &key, size, &block, &progress.sent).await;
            let took = started.elapsed();
            progress.finish(took, etag.is_ok());
            let etag = etag?;
            t.delete(bucket, &key).await?;
            results.push((took, etag));
        }
        ensure!(
            results[0].1 == results[1].1,
            "the ETags differ ({} direct, {} through the edge): the edge stored other bytes",
            results[0].1,
            results[1].1
        );
        rows.push((mib, results[0].0, results[1].0));
    }

    println!("\n| size | direct | edge | speed-up through the edge |");
    println!("|---|---|---|---|");
    for (mib, direct, edge) in rows {
        let rate = |d: Duration| mib as f64 / d.as_secs_f64();
        println!(
            "| {mib} MiB | {:.2} s ({:.1} MiB/s) | {:.2} s ({:.1} MiB/s) | {:.2}x |",
            direct.as_secs_f64(),
            rate(direct),
            edge.as_secs_f64(),
            rate(edge),
            direct.as_secs_f64() / edge.as_secs_f64(),
        );
    }
    Ok(())
}

impl Target {
    async fn call(
        &self,
        method: Method,
        path_and_query: String,
        body: Body,
        length: u64,
    ) -> anyhow::Result<(http::StatusCode, HeaderMap, Bytes)> {
        let request = OriginRequest {
            method,
            path_and_query,
            headers: HeaderMap::new(),
            anonymous: false,
            aws_chunked: false,
        };
        let response = self
            .client
            .send(request, body, Some(length))
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.name))?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok((parts.status, parts.headers, body))
    }

    /// A call that must succeed (2xx, and no `<Error>` in a 200 body: S3 can fail a
    /// CompleteMultipartUpload that way).
    async fn ok(
        &self,
        method: Method,
        path_and_query: String,
        body: Body,
        length: u64,
    ) -> anyhow::Result<(HeaderMap, Bytes)> {
        let what = format!("{method} {path_and_query} via {}", self.name);
        let (status, headers, body) = self.call(method, path_and_query, body, length).await?;
        if !status.is_success() || body.starts_with(b"<?xml") && contains(&body, b"<Error>") {
            bail!("{what}: {status} {}", String::from_utf8_lossy(&body));
        }
        Ok((headers, body))
    }

    async fn ensure_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        let (status, _, body) = self
            .call(Method::PUT, format!("/{bucket}"), Body::empty(), 0)
            .await?;
        if status.is_success() || contains(&body, b"BucketAlreadyOwnedByYou") {
            return Ok(());
        }
        bail!(
            "creating bucket {bucket}: {status} {}",
            String::from_utf8_lossy(&body)
        )
    }

    async fn delete(&self, bucket: &str, key: &str) -> anyhow::Result<()> {
        self.ok(Method::DELETE, format!("/{bucket}/{key}"), Body::empty(), 0)
            .await
            .map(drop)
    }

    /// Uploads `size` bytes as aws-cli would; returns the object's ETag.
    async fn upload(
        &self,
        bucket: &str,
        key: &str,
        size: u64,
        block: &Bytes,
        sent: &Arc<AtomicU64>,
    ) -> anyhow::Result<String> {
        let path = format!("/{bucket}/{key}");
        if size < PART {
            let body = counted(block.slice(..size as usize), sent.clone());
            let (headers, _) = self.ok(Method::PUT, path, body, size).await?;
            return etag(&headers);
        }
        let (_, created) = self
            .ok(Method::POST, format!("{path}?uploads"), Body::empty(), 0)
            .await?;
        let upload_id = element(&created, "UploadId").context("no UploadId")?;
        let parts = size.div_ceil(PART);
        let uploaded: anyhow::Result<Vec<(u64, String)>> = futures::stream::iter(1..=parts)
            .map(|n| {
                let len = PART.min(size - (n - 1) * PART);
                let body = counted(block.slice(..len as usize), sent.clone());
                let query = format!("{path}?partNumber={n}&uploadId={upload_id}");
                async move {
                    let (headers, _) = self.ok(Method::PUT, query, body, len).await?;
                    Ok((n, etag(&headers)?))
                }
            })
            .buffer_unordered(PARALLEL)
            .try_collect()
            .await;
        let mut uploaded = match uploaded {
            Ok(parts) => parts,
            Err(e) => {
                let abort = format!("{path}?uploadId={upload_id}");
                let _ = self.call(Method::DELETE, abort, Body::empty(), 0).await;
                return Err(e);
            }
        };
        uploaded.sort();
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (n, etag) in &uploaded {
            xml += &format!("<Part><PartNumber>{n}</PartNumber><ETag>\"{etag}\"</ETag></Part>");
        }
        xml += "</CompleteMultipartUpload>";
        let length = xml.len() as u64;
        let (_, done) = self
            .ok(
                Method::POST,
                format!("{path}?uploadId={upload_id}"),
                Body::from(xml),
                length,
            )
            .await?;
        Ok(element(&done, "ETag")
            .context("no ETag in the CompleteMultipartUpload answer")?
            .replace("&quot;", "")
            .trim_matches('"')
            .to_string())
    }
}

/// `data` as a streaming body that adds to `sent` as hyper takes each piece.
fn counted(data: Bytes, sent: Arc<AtomicU64>) -> Body {
    let pieces = (0..data.len()).step_by(PIECE).map(move |at| {
        let piece = data.slice(at..(at + PIECE).min(data.len()));
        sent.fetch_add(piece.len() as u64, Ordering::Relaxed);
        Ok::<_, std::convert::Infallible>(piece)
    });
    Body::from_stream(futures::stream::iter(pieces))
}

fn etag(headers: &HeaderMap) -> anyhow::Result<String> {
    let value = headers.get("etag").context("no ETag in the answer")?;
    Ok(value.to_str()?.trim_matches('"').to_string())
}

/// The text of the first `<name>` element (the answers here are small and flat).
fn element(xml: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(xml).ok()?;
    let start = text.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + text[start..].find(&format!("</{name}>"))?;
    Some(text[start..end].to_string())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A progress line on stderr, redrawn while an upload runs (on a terminal only).
struct Progress {
    label: String,
    total: u64,
    sent: Arc<AtomicU64>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn start(label: String, total: u64) -> Progress {
        let sent = Arc::new(AtomicU64::new(0));
        let ticker = std::io::stderr().is_terminal().then(|| {
            let (label, sent) = (label.clone(), sent.clone());
            let started = Instant::now();
            tokio::spawn(async move {
                loop {
                    let done = sent.load(Ordering::Relaxed).min(total);
                    let secs = started.elapsed().as_secs_f64().max(1e-3);
                    let width = 30;
                    let filled = (done * width / total.max(1)) as usize;
                    // Sent, but not yet answered (an edge's Complete waits for its relay).
                    let state = if done == total { " finishing" } else { "" };
                    eprint!(
                        "\r  {label:<20} [{}{}] {:>6.1}/{:.1} MiB {:>7.1} MiB/s{state}",
                        "#".repeat(filled),
                        ".".repeat(width as usize - filled),
                        done as f64 / MIB as f64,
                        total as f64 / MIB as f64,
                        done as f64 / MIB as f64 / secs,
                    );
                    let _ = std::io::stderr().flush();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        });
        Progress {
            label,
            total,
            sent,
            ticker,
        }
    }

    fn finish(self, took: Duration, ok: bool) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
            eprint!("\r\x1b[2K");
        }
        let outcome = if ok { "" } else { " (failed)" };
        println!(
            "  {:<20} {:>7.2} s {:>8.1} MiB/s{outcome}",
            self.label,
            took.as_secs_f64(),
            self.total as f64 / MIB as f64 / took.as_secs_f64(),
        );
    }
}
