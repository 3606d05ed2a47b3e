//! Start-up sweeps, reopening, and the (ignored) throughput measurement.

use super::*;

#[tokio::test]
async fn sweep_removes_orphans_and_staging_files() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).await.unwrap();
    engine
        .create_bucket("b", BucketSettings::default())
        .await
        .unwrap();
    put(&engine, "k", b"kept").await.unwrap();
    let up = engine
        .create_upload("b", "m", ObjectHeaders::default(), None)
        .await
        .unwrap();
    engine
        .upload_part("b", "m", &up.upload_id, 1, body(b"part"), ok())
        .await
        .unwrap();
    drop(engine);

    let orphan = blobs::Blobs::new_id();
    let orphan_path = dir.path().join("blobs").join(&orphan[..2]).join(&orphan);
    std::fs::write(&orphan_path, b"orphan").unwrap();
    let staging = dir
        .path()
        .join("blobs/ab/ab0123456789abcdef0123456789abcd#1");
    std::fs::write(&staging, b"partial").unwrap();
    let ours = dir.path().join("blobs/cd/.interrupted.tmp");
    std::fs::write(&ours, b"partial").unwrap();
    let foreign = dir.path().join("blobs/not-ours.txt");
    std::fs::write(&foreign, b"left alone").unwrap();

    let engine = Engine::open(config(dir.path())).await.unwrap();
    assert!(!orphan_path.exists());
    assert!(!staging.exists());
    assert!(!ours.exists());
    assert!(foreign.exists());
    assert_eq!(get(&engine, "k", None).await, b"kept");
    assert_eq!(blob_files(dir.path()).len(), 2); // part, foreign file (the object is inline)
}

#[tokio::test]
async fn reopen_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = data(3 * MIB, 9);
    let upload_id = {
        let engine = Engine::open(config(dir.path())).await.unwrap();
        engine
            .create_bucket(
                "b",
                BucketSettings {
                    public_read_acl: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        put(&engine, "k", &bytes).await.unwrap();
        let up = engine
            .create_upload("b", "m", ObjectHeaders::default(), None)
            .await
            .unwrap();
        engine
            .upload_part("b", "m", &up.upload_id, 1, body(b"part"), ok())
            .await
            .unwrap();
        up.upload_id
    };
    let engine = Engine::open(config(dir.path())).await.unwrap();
    assert!(engine.bucket("b").await.unwrap().settings.public_read_acl);
    assert_eq!(get(&engine, "k", None).await, bytes);
    let (_, parts, _) = engine
        .list_parts(
            "b",
            "m",
            &upload_id,
            ListPartsQuery {
                part_number_marker: 0,
                max_parts: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(parts.len(), 1);
}

/// `cargo test -p outpost-store --release --lib engine::tests::durability::throughput -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread")]
#[ignore = "throughput measurement, not a check"]
async fn throughput() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_object_size = 4 << 30;
    let engine = Engine::open(cfg).await.unwrap();
    engine
        .create_bucket("b", BucketSettings::default())
        .await
        .unwrap();
    let chunk = Bytes::from(data(256 * 1024, 7));
    let total = 1usize << 30;
    let stream = futures::stream::iter((0..total / chunk.len()).map(move |_| Ok(chunk.clone())));
    let start = std::time::Instant::now();
    engine
        .put_object("b", "big", PutOptions::default(), stream.boxed(), ok())
        .await
        .unwrap();
    let put = start.elapsed();
    let start = std::time::Instant::now();
    let (_, mut s) = engine.read_object("b", "big", None).await.unwrap();
    let mut n = 0;
    while let Some(c) = s.next().await {
        n += c.unwrap().len();
    }
    assert_eq!(n, total);
    let get = start.elapsed();
    let gib = |d: Duration| total as f64 / d.as_secs_f64() / (1u64 << 30) as f64;
    println!(
        "PUT 1 GiB: {put:?} ({:.2} GiB/s)  GET: {get:?} ({:.2} GiB/s)",
        gib(put),
        gib(get)
    );
}

/// Small PUTs from 16 writers at once: bound by per-object durability (the index commit, the
/// blob's fsyncs), not by bytes. `cargo test -p outpost-store --lib
/// engine::tests::durability::small_put_rate -- --ignored --nocapture` (redb and the hashes
/// are optimised even in test builds).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "throughput measurement, not a check"]
async fn small_put_rate() {
    let (_dir, engine) = setup().await;
    let (writers, each) = (16, 150);
    let body4k = data(4096, 3);
    let start = std::time::Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (engine, body4k) = (engine.clone(), body4k.clone());
            tokio::spawn(async move {
                for i in 0..each {
                    put(&engine, &format!("w{w}/{i}"), &body4k).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let took = start.elapsed();
    println!(
        "{} PUTs of 4 KiB from {writers} writers: {took:?} ({:.0} objects/s)",
        writers * each,
        (writers * each) as f64 / took.as_secs_f64()
    );
}
