//! Uploads through the edge: parts spooled at the edge and relayed to the store, Complete
//! only once the store holds every part; store outages, edge crashes, a full spool.

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::common::*;

/// Uploads `parts` through `client` (checking each ETag), returns the parts list for Complete.
async fn upload(
    client: &aws_sdk_s3::Client,
    b: &str,
    key: &str,
    id: &str,
    parts: &[&[u8]],
) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(upload_parts(client, b, key, id, parts).await))
        .build()
}

async fn complete(
    client: &aws_sdk_s3::Client,
    b: &str,
    key: &str,
    id: &str,
    parts: CompletedMultipartUpload,
) -> Result<String, (u16, String)> {
    let r = client
        .complete_multipart_upload()
        .bucket(b)
        .key(key)
        .upload_id(id)
        .multipart_upload(parts)
        .send()
        .await;
    match r {
        Ok(out) => Ok(out.e_tag().unwrap_or_default().to_string()),
        Err(e) => Err(sdk_err::<(), _>(Err(e))),
    }
}

#[tokio::test]
async fn multipart_through_the_edge_lands_whole_at_the_store() {
    let p = EdgePair::start();
    let edge = p.edge.client();
    let b = p.store.bucket(&p.store.client(), "mpu").await;
    let (p1, p2) = (random_bytes(5 * MIB, 1), random_bytes(MIB + 17, 2));
    let id = start_upload(&edge, &b, "big.bin").await;
    let parts = upload(&edge, &b, "big.bin", &id, &[&p1, &p2]).await;
    let etag = complete(&edge, &b, "big.bin", &id, parts).await.unwrap();
    assert_eq!(
        etag,
        multipart_etag(&[&p1, &p2]),
        "the store's ETag, as a direct upload gets"
    );
    let got = object_bytes(&p.store.client(), &b, "big.bin").await;
    assert!(got == [p1, p2].concat());
}

#[tokio::test]
async fn a_corrupt_part_is_refused_at_the_edge() {
    let p = EdgePair::start();
    let b = p.store.bucket(&p.store.client(), "corrupt").await;
    let id = start_upload(&p.edge.client(), &b, "k").await;
    let r = RawRequest::new(
        "PUT",
        &format!("/{b}/k?partNumber=1&uploadId={}", enc_query(&id)),
    )
    .header("content-md5", &hash::b64(&hash::md5(b"something else")))
    .body("part data")
    .sign(&p.edge)
    .send(&p.edge)
    .await;
    r.assert_error(400, "BadDigest");
    let r = RawRequest::new(
        "PUT",
        &format!("/{b}/k?partNumber=1&uploadId={}", enc_query(&id)),
    )
    .header("x-amz-checksum-crc32", &raw::crc32_b64(b"something else"))
    .body("part data")
    .sign(&p.edge)
    .send(&p.edge)
    .await;
    r.assert_error(400, "BadDigest");
    let listed = p
        .store
        .client()
        .list_parts()
        .bucket(&b)
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert!(listed.parts().is_empty(), "nothing travelled to the store");
    // A part for an upload the store does not know is refused at once, as by the store.
    let edge = p.edge.client();
    assert_sdk_err(
        edge.upload_part()
            .bucket(&b)
            .key("k")
            .upload_id("no-such-upload")
            .part_number(1)
            .body(body("x"))
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
}

/// An upload of two parts spooled at an edge whose store is away.
struct Away {
    edge: TestStore,
    bucket: String,
    id: String,
    data: [Vec<u8>; 2],
    parts: CompletedMultipartUpload,
    /// The stopped store (its data directory lives as long as it) and where to start it again.
    _store: TestStore,
    port: u16,
    data_dir: std::path::PathBuf,
}

/// An edge whose Complete waits `relay_wait_secs`, its store stopped after the upload began.
async fn upload_while_the_store_is_away(relay_wait_secs: u64) -> Away {
    let mut store = TestStore::start();
    let bucket = store.bucket(&store.client(), "longwait").await;
    let config = format!("[edge]\nrelay_wait_secs = {relay_wait_secs}\n");
    let edge = TestStore::start_edge(&[&store], StoreOptions::default().config(&config));
    let id = start_upload(&edge.client(), &bucket, "k").await;
    let (port, data_dir) = (store.port, store.data_dir.clone());
    store.kill();
    let data = [random_bytes(5 * MIB, 8), random_bytes(777, 9)];
    let parts = upload(&edge.client(), &bucket, "k", &id, &[&data[0], &data[1]]).await;
    Away {
        edge,
        bucket,
        id,
        data,
        parts,
        _store: store,
        port,
        data_dir,
    }
}

#[tokio::test]
async fn complete_waits_for_a_store_that_is_away_and_succeeds_once_it_is_back() {
    // Parts are answered from the edge's spool while the store is down...
    let away = upload_while_the_store_is_away(2).await;
    let (client, b, id) = (away.edge.client(), &away.bucket, &away.id);
    let [p1, p2] = &away.data;
    // A client resuming asks the edge which parts it has: both, though the store has none.
    let listed = client
        .list_parts()
        .bucket(b)
        .key("k")
        .upload_id(id)
        .send()
        .await
        .unwrap();
    let listed: Vec<_> = listed
        .parts()
        .iter()
        .map(|p| (p.part_number(), p.e_tag().map(str::to_owned), p.size()))
        .collect();
    assert_eq!(
        listed,
        [
            (Some(1), Some(etag_of(p1)), Some(p1.len() as i64)),
            (Some(2), Some(etag_of(p2)), Some(p2.len() as i64)),
        ]
    );
    // ...but Complete cannot succeed for data the store does not hold.
    let (status, code) = complete(&client, b, "k", id, away.parts.clone())
        .await
        .unwrap_err();
    assert_eq!((status, code.as_str()), (503, "ServiceUnavailable"));

    let store = TestStore::start_with(
        StoreOptions::default()
            .data_dir(&away.data_dir)
            .port(away.port),
    );
    let mut result = Err((0, String::new()));
    for _ in 0..20 {
        result = complete(&client, b, "k", id, away.parts.clone()).await;
        if result.is_ok() {
            break;
        }
    }
    assert_eq!(result.unwrap(), multipart_etag(&[p1, p2]));
    assert!(object_bytes(&store.client(), b, "k").await == [&p1[..], p2].concat());
}

#[tokio::test]
async fn a_long_complete_is_kept_alive_and_succeeds_in_one_call() {
    let away = upload_while_the_store_is_away(60).await;
    let client = away.edge.client();
    let (bucket, id, parts) = (away.bucket.clone(), away.id.clone(), away.parts.clone());
    let completing = tokio::spawn(async move { complete(&client, &bucket, "k", &id, parts).await });
    // Past the edge's 5 s of plain waiting: it has answered 200 and sends spaces meanwhile.
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    assert!(
        !completing.is_finished(),
        "Complete must wait for the store"
    );
    let store = TestStore::start_with(
        StoreOptions::default()
            .data_dir(&away.data_dir)
            .port(away.port),
    );
    let etag = completing
        .await
        .unwrap()
        .expect("one Complete call succeeds");
    let [p1, p2] = &away.data;
    assert_eq!(etag, multipart_etag(&[p1, p2]));
    assert!(object_bytes(&store.client(), &away.bucket, "k").await == [&p1[..], p2].concat());
}

#[tokio::test]
async fn a_long_complete_that_fails_says_so_in_its_body() {
    let away = upload_while_the_store_is_away(12).await;
    let mut xml = String::from("<CompleteMultipartUpload>");
    for p in away.parts.parts() {
        xml += &format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
            p.part_number().unwrap(),
            p.e_tag().unwrap()
        );
    }
    xml += "</CompleteMultipartUpload>";
    let target = format!("/{}/k?uploadId={}", away.bucket, enc_query(&away.id));
    let r = RawRequest::new("POST", &target)
        .body(xml)
        .sign(&away.edge)
        .send(&away.edge)
        .await;
    // S3's way with a long Complete: 200 at once, spaces, then the outcome as the document.
    assert_eq!(r.status, 200);
    let text = r.text();
    let rest = text
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .unwrap_or_else(|| panic!("declaration first: {text:?}"));
    assert!(rest.starts_with(' '), "kept alive with spaces: {text:?}");
    assert!(
        rest.trim_start()
            .starts_with("<Error><Code>ServiceUnavailable</Code>"),
        "{text}"
    );
}

/// Every file under an edge's spool, relative to it, sorted.
fn spool_files(cache: &std::path::Path) -> Vec<std::path::PathBuf> {
    let spool = cache.join("spool");
    let mut files: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .flat_map(|upload| std::fs::read_dir(upload.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path().strip_prefix(&spool).unwrap().to_owned())
        .collect();
    files.sort();
    files
}

/// Spooled parts survive an edge crash, and so does nothing else (the spool writes through
/// `durable::StagedFile`, and a restart sweeps what a crash can leave).
#[tokio::test]
async fn spooled_parts_survive_an_edge_crash() {
    let mut store = TestStore::start();
    let b = store.bucket(&store.client(), "crash").await;
    let cache = tempfile::tempdir().unwrap();
    let edge_opts = || {
        StoreOptions::default()
            .data_dir(cache.path())
            .config("[edge]\nrelay_wait_secs = 30\n")
    };
    let mut edge = TestStore::start_edge(&[&store], edge_opts());
    let id = start_upload(&edge.client(), &b, "k").await;
    let (port, data_dir) = (store.port, store.data_dir.clone());
    store.kill();
    let (p1, p2) = (random_bytes(5 * MIB, 5), random_bytes(4321, 6));
    let parts = upload(&edge.client(), &b, "k", &id, &[&p1, &p2]).await;
    edge.kill(); // SIGKILL with both parts spooled and not relayed

    // What a crash mid-UploadPart can leave besides: a staging file, and bytes committed
    // without their description (neither was answered). A restart sweeps them and keeps
    // every answered part; the store still away, nothing moves while we look.
    let answered = spool_files(cache.path());
    let names: Vec<_> = answered.iter().map(|p| p.file_name().unwrap()).collect();
    assert_eq!(
        names,
        ["1.data", "1.json", "2.data", "2.json"],
        "no staging files"
    );
    let upload_dir = cache
        .path()
        .join("spool")
        .join(answered[0].parent().unwrap());
    std::fs::write(upload_dir.join(".crashed.tmp"), b"half a part").unwrap();
    std::fs::write(upload_dir.join("3.data"), b"never described").unwrap();
    let edge = TestStore::start_edge(&[&store], edge_opts());
    assert_eq!(spool_files(cache.path()), answered, "swept at start-up");

    let store = TestStore::start_with(StoreOptions::default().data_dir(&data_dir).port(port));
    let etag = complete(&edge.client(), &b, "k", &id, parts)
        .await
        .expect("Complete after the restart");
    assert_eq!(etag, multipart_etag(&[&p1, &p2]));
    assert!(object_bytes(&store.client(), &b, "k").await == [p1, p2].concat());
}

#[tokio::test]
async fn a_full_spool_answers_slow_down() {
    let p = EdgePair::start_with(&format!("spool_bytes = {}", MIB));
    let b = p.store.bucket(&p.store.client(), "full").await;
    let edge = p.edge.client();
    let id = start_upload(&edge, &b, "k").await;
    assert_sdk_err(
        edge.upload_part()
            .bucket(&b)
            .key("k")
            .upload_id(&id)
            .part_number(1)
            .body(body(random_bytes(2 * MIB, 7)))
            .send()
            .await,
        503,
        "SlowDown",
    );
    // A part that fits is taken.
    upload(&edge, &b, "k", &id, &[&random_bytes(1000, 8)]).await;
}

#[tokio::test]
async fn write_through_makes_the_first_read_near_the_uploader_a_hit() {
    // The S3 face writes through; so does a distribution of the bucket, for /site/* only.
    let b = unique_bucket("wt");
    let p = EdgePair::start_with(&format!(
        r#"[edge.default_behavior]
write_through = true
[[edge.distribution]]
hosts = ["wt.example.test"]
bucket = "{b}"
[[edge.distribution.behavior]]
path = "/site/*"
write_through = true
[[edge.distribution.behavior]]
path = "*"
write_through = false
"#
    ));
    p.store
        .client()
        .create_bucket()
        .bucket(&b)
        .send()
        .await
        .unwrap();
    let edge = p.edge.client();
    let small = random_bytes(1000, 1);
    put_bytes(&edge, &b, "site/small.txt", small.clone()).await;
    let (p1, p2) = (random_bytes(5 * MIB, 2), random_bytes(MIB + 3, 3));
    let id = start_upload(&edge, &b, "big.bin").await;
    let parts = upload(&edge, &b, "big.bin", &id, &[&p1, &p2]).await;
    complete(&edge, &b, "big.bin", &id, parts).await.unwrap();

    // Three entries are filled from the store, in the background: both objects on the S3
    // face, the one under /site/ for the distribution.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while p.store.origin_gets("200").await < 3.0
        || p.edge.metric("outpost_edge_fills_in_flight", &[]).await > 0.0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no write-through fills"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (got, x_cache, _) = signed_get(&p.edge, &b, "site/small.txt").await;
    assert_eq!((got == small, x_cache.as_str()), (true, "Hit from outpost"));
    let (got, x_cache, _) = signed_get(&p.edge, &b, "big.bin").await;
    assert!(got == [p1, p2].concat(), "the written-through body");
    assert_eq!(x_cache, "Hit from outpost");
    let r = RawRequest::new("GET", "/site/small.txt")
        .host("wt.example.test")
        .send(&p.edge)
        .await;
    assert_eq!(
        (r.status, r.header("x-cache")),
        (200, Some("Hit from outpost"))
    );
    assert_eq!(r.body, small);
    assert_eq!(
        p.store.origin_gets("200").await,
        3.0,
        "the reads cost the store nothing"
    );
    // Outside the distribution's write-through paths, its first read is a miss.
    let r = RawRequest::new("GET", "/big.bin")
        .host("wt.example.test")
        .send(&p.edge)
        .await;
    assert_eq!(r.header("x-cache"), Some("Miss from outpost"));
}

#[tokio::test]
async fn speedtest_uploads_both_ways_and_compares() {
    let p = EdgePair::start();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["speedtest", "--direct", &p.store.url, "--edge", &p.edge.url])
        .args(["--bucket", "speed", "--sizes-mib", "1,9"])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One row per size: a single PUT and a multipart upload (9 MiB = 8 + 1), each both ways.
    for row in ["| 1 MiB | ", "| 9 MiB | "] {
        assert_eq!(stdout.matches(row).count(), 1, "{row} in\n{stdout}");
    }
    let left = p
        .store
        .client()
        .list_objects_v2()
        .bucket("speed")
        .send()
        .await
        .unwrap();
    assert_eq!(left.key_count(), Some(0), "test objects are deleted");
    // The edge relayed its share: the 9 MiB upload's two parts reached the store through it.
    let parts = p
        .store
        .metric("outpost_s3_requests_total", &[("operation", "UploadPart")])
        .await;
    assert_eq!(parts, 4.0, "two parts direct, two relayed by the edge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_put_streams_through_the_edge_in_flat_memory() {
    use aws_sdk_s3::primitives::{ByteStream, SdkBody};
    use sha2::{Digest, Sha256};
    const SIZE: usize = 256 * MIB;
    // The edge buffering the body (or the object on its way back) would show as RSS of at least
    // its size.
    const PEAK_RSS_LIMIT_KIB: u64 = 128 * 1024;
    let p = EdgePair::start();
    let b = p.store.bucket(&p.store.client(), "bigput").await;
    let edge = client_with_timeout(&p.edge.url, std::time::Duration::from_secs(600));
    let block = bytes::Bytes::from(random_bytes(MIB, 11));
    let blocks = {
        let block = block.clone();
        futures::stream::iter((0..SIZE / MIB).map(move |_| Ok::<_, std::io::Error>(block.clone())))
    };
    edge.put_object()
        .bucket(&b)
        .key("big")
        .content_length(SIZE as i64)
        .body(ByteStream::new(SdkBody::from_body_1_x(
            reqwest::Body::wrap_stream(blocks),
        )))
        .send()
        .await
        .expect("256 MiB PUT through the edge");

    let mut want = Sha256::new();
    (0..SIZE / MIB).for_each(|_| want.update(&block));
    let got = edge
        .get_object()
        .bucket(&b)
        .key("big")
        .send()
        .await
        .unwrap();
    let mut body = got.body;
    let mut hash = Sha256::new();
    while let Some(chunk) = body.next().await {
        hash.update(chunk.expect("body chunk"));
    }
    assert!(
        hash.finalize() == want.finalize(),
        "the object read back through the edge"
    );
    let peak = p.edge.peak_rss_kib();
    eprintln!(
        "edge peak RSS after a 256 MiB PUT and GET: {} MiB",
        peak / 1024
    );
    assert!(
        peak < PEAK_RSS_LIMIT_KIB,
        "edge peak RSS {} MiB for a 256 MiB PUT and GET: it buffers",
        peak / 1024
    );
}

#[tokio::test]
async fn part_copy_listing_and_abort_go_through_the_edge() {
    let p = EdgePair::start();
    let edge = p.edge.client();
    let b = p.store.bucket(&p.store.client(), "flow").await;
    let source = random_bytes(6 * MIB, 12);
    put_bytes(&edge, &b, "source", source.clone()).await;

    // UploadPartCopy (relayed) beside an UploadPart (spooled), then Complete.
    let id = start_upload(&edge, &b, "copy").await;
    let copied = edge
        .upload_part_copy()
        .bucket(&b)
        .key("copy")
        .upload_id(&id)
        .part_number(1)
        .copy_source(format!("{b}/source"))
        .copy_source_range(format!("bytes=0-{}", 5 * MIB - 1))
        .send()
        .await
        .expect("UploadPartCopy through the edge");
    let copied_etag = copied.copy_part_result().and_then(|r| r.e_tag()).unwrap();
    let tail = random_bytes(1234, 13);
    let spooled = edge
        .upload_part()
        .bucket(&b)
        .key("copy")
        .upload_id(&id)
        .part_number(2)
        .body(body(tail.clone()))
        .send()
        .await
        .unwrap();
    let listed = edge
        .list_multipart_uploads()
        .bucket(&b)
        .send()
        .await
        .unwrap();
    assert!(
        listed
            .uploads()
            .iter()
            .any(|u| u.upload_id() == Some(id.as_str())),
        "ListMultipartUploads through the edge shows the upload"
    );
    let part = |n, etag: &str| CompletedPart::builder().part_number(n).e_tag(etag).build();
    let parts = CompletedMultipartUpload::builder()
        .parts(part(1, copied_etag))
        .parts(part(2, spooled.e_tag().unwrap()))
        .build();
    complete(&edge, &b, "copy", &id, parts).await.unwrap();
    let want = [&source[..5 * MIB], &tail[..]].concat();
    assert!(object_bytes(&p.store.client(), &b, "copy").await == want);

    // Abort through the edge ends the upload at the store and at the edge.
    let id = start_upload(&edge, &b, "aborted").await;
    upload(&edge, &b, "aborted", &id, &[b"spooled"]).await;
    edge.abort_multipart_upload()
        .bucket(&b)
        .key("aborted")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_sdk_err(
        edge.list_parts()
            .bucket(&b)
            .key("aborted")
            .upload_id(&id)
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    let listed = edge
        .list_multipart_uploads()
        .bucket(&b)
        .send()
        .await
        .unwrap();
    assert!(listed.uploads().is_empty(), "no upload left");
}
