//! One fill per object, whatever came first (issue 10, bug 2): a HEAD through the edge, then
//! 50 concurrent GETs of a large object once made the origin send it 2× to 13× over. Origin
//! bytes are read from the store's own `outpost_s3_bytes_sent_total`.

use crate::common::*;

/// Readers at once, as in the report.
const READERS: usize = 50;
/// Slices of 1 MiB: an 8 MiB object is eight of them.
const SLICE: usize = MIB;
const SIZE: usize = 8 * MIB + 321;

/// A pair with 1 MiB slices and an 8 MiB object under `key`; returns (pair, bucket, data).
async fn pair_with_object(key: &str) -> (EdgePair, String, Vec<u8>) {
    let p = EdgePair::start_with(&format!("slice_bytes = {SLICE}"));
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "onefill").await;
    let data = random_bytes(SIZE, 10);
    s3.put_object()
        .bucket(&b)
        .key(key)
        .cache_control("max-age=3600")
        .body(body(data.clone()))
        .send()
        .await
        .expect("put to the store");
    (p, b, data)
}

async fn origin_bytes(p: &EdgePair) -> f64 {
    p.store.metric("outpost_s3_bytes_sent_total", &[]).await
}

/// `READERS` concurrent GETs through the edge, each with its range (None: the whole object);
/// every reader must get exactly its bytes.
async fn concurrent_gets(
    p: &EdgePair,
    b: &str,
    key: &str,
    data: &[u8],
    ranges: &[Option<(usize, usize)>],
) {
    let edge = p.edge.client();
    let reads = ranges.iter().map(|&range| {
        let (edge, b, key) = (edge.clone(), b.to_owned(), key.to_owned());
        tokio::spawn(async move {
            let mut get = edge.get_object().bucket(&b).key(&key);
            if let Some((s, e)) = range {
                get = get.range(format!("bytes={s}-{e}"));
            }
            (
                range,
                read_body(get.send().await.expect("GET through the edge").body).await,
            )
        })
    });
    for read in futures::future::join_all(reads).await {
        let (range, got) = read.unwrap();
        let want = match range {
            Some((s, e)) => &data[s..=e],
            None => data,
        };
        assert!(
            got == want,
            "reader {range:?} got {} bytes, not its own",
            got.len()
        );
    }
}

fn assert_one_fill(sent: f64, what: &str) {
    // Heads and small answers carry no body bytes; a little slack for error documents.
    assert!(
        sent <= (SIZE + 4096) as f64,
        "{what}: the origin sent {sent} bytes for an object of {SIZE} ({:.1}×)",
        sent / SIZE as f64
    );
}

/// A fresh edge and object; a HEAD through the edge first if `head_first`; then `READERS`
/// concurrent GETs of `ranges`: the origin must send the object's bytes once at most.
async fn one_fill(head_first: bool, ranges: &[Option<(usize, usize)>], what: &str) {
    let (p, b, data) = pair_with_object("big.bin").await;
    let before = origin_bytes(&p).await;
    if head_first {
        let head = p
            .edge
            .client()
            .head_object()
            .bucket(&b)
            .key("big.bin")
            .send()
            .await;
        assert_eq!(head.unwrap().content_length(), Some(SIZE as i64));
    }
    concurrent_gets(&p, &b, "big.bin", &data, ranges).await;
    assert_one_fill(origin_bytes(&p).await - before, what);
}

/// Ranges all over the object: open-ended, across slice boundaries, the last bytes.
fn scattered_ranges(step: usize) -> Vec<Option<(usize, usize)>> {
    (0..READERS)
        .map(|i| {
            let start = (i * step) % (SIZE - 1);
            let end = match i % 3 {
                0 => SIZE - 1,
                1 => (start + SLICE + 17).min(SIZE - 1),
                _ => (start + 1000).min(SIZE - 1),
            };
            Some((start, end))
        })
        .collect()
}

#[tokio::test]
async fn a_head_then_concurrent_gets_fill_the_object_once() {
    one_fill(true, &[None; READERS], "HEAD, then 50 GETs").await;
}

#[tokio::test]
async fn concurrent_cold_gets_fill_the_object_once() {
    one_fill(false, &[None; READERS], "50 cold GETs").await;
}

#[tokio::test]
async fn concurrent_ranged_gets_after_a_head_fill_each_slice_once() {
    one_fill(
        true,
        &scattered_ranges(163_841),
        "HEAD, then 50 ranged GETs",
    )
    .await;
}

#[tokio::test]
async fn concurrent_ranged_cold_gets_fill_each_slice_once() {
    one_fill(false, &scattered_ranges(179_999), "50 cold ranged GETs").await;
}
