//! LARGE-OBJECT TEST (1 GiB through the SDK). Uploads and downloads a generated 1 GiB body
//! without ever holding it in memory on either side, and asserts the store's peak RSS (VmHWM of
//! the child process) stays under 200 MiB: the store must stream, not buffer.
//!
//! Takes ~10-40 s in a debug build. Run alone with `cargo test --test store streaming_memory`.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::{ByteStream, SdkBody};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::common::*;

const SIZE: usize = 1 << 30;
const BLOCK: usize = 1 << 20;
const PEAK_RSS_LIMIT_KIB: u64 = 200 * 1024;

fn block(base: &[u8], i: usize) -> Bytes {
    let mut v = base.to_vec();
    v[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Bytes::from(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_memory_1gib_upload_and_download_keep_rss_flat() {
    let store = TestStore::start();
    let s3 = client_with_timeout(&store.url, Duration::from_secs(900));
    let b = store.bucket(&s3, "big").await;
    let base = random_bytes(BLOCK, 1234);
    let blocks = SIZE / BLOCK;

    let mut want = Sha256::new();
    for i in 0..blocks {
        want.update(block(&base, i));
    }
    let want = want.finalize();
    let baseline = store.rss_kib();

    // Upload: a stream of 1 MiB blocks, known length, so the SDK sends aws-chunked (signed chunks
    // and a CRC32 trailer over plain http).
    let started = Instant::now();
    let base_up = base.clone();
    let stream = futures::stream::iter(
        (0..blocks).map(move |i| Ok::<Bytes, std::io::Error>(block(&base_up, i))),
    );
    let body = ByteStream::new(SdkBody::from_body_1_x(reqwest::Body::wrap_stream(stream)));
    let put = s3
        .put_object()
        .bucket(&b)
        .key("one-gib")
        .content_length(SIZE as i64)
        .body(body)
        .send()
        .await
        .expect("1 GiB streaming upload");
    let up_secs = started.elapsed().as_secs_f64();
    assert!(put.e_tag().is_some());
    let after_upload_peak = store.peak_rss_kib();

    // Download, hashing as it arrives.
    let started = Instant::now();
    let got = s3
        .get_object()
        .bucket(&b)
        .key("one-gib")
        .send()
        .await
        .expect("GET 1 GiB");
    assert_eq!(got.content_length(), Some(SIZE as i64));
    let mut stream = got.body;
    let mut hasher = Sha256::new();
    let mut n = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("body chunk");
        n += chunk.len();
        hasher.update(&chunk);
    }
    let down_secs = started.elapsed().as_secs_f64();
    assert_eq!(n, SIZE, "downloaded length");
    assert!(
        hasher.finalize() == want,
        "downloaded bytes differ from the uploaded ones"
    );

    let peak = store.peak_rss_kib();
    eprintln!(
        "streaming_memory: baseline RSS {} MiB, peak after upload {} MiB, peak after download {} MiB; \
         upload {:.0} MiB/s, download {:.0} MiB/s",
        baseline / 1024,
        after_upload_peak / 1024,
        peak / 1024,
        1024.0 / up_secs,
        1024.0 / down_secs
    );
    assert!(
        peak < PEAK_RSS_LIMIT_KIB,
        "store peak RSS {} MiB for a 1 GiB upload+download (limit {} MiB, baseline {} MiB): it buffers",
        peak / 1024,
        PEAK_RSS_LIMIT_KIB / 1024,
        baseline / 1024
    );
}
