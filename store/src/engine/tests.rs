//! Engine tests: a real redb index and LocalFileSystem blobs in temp dirs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use md5::{Digest as _, Md5};

use super::checksum::{self, ChecksumValue};
use super::index::{self, OBJECTS, ObjectRecord};
use super::*;

const MIB: usize = 1 << 20;

fn config(dir: &Path) -> EngineConfig {
    EngineConfig {
        data_dir: dir.to_path_buf(),
        max_object_size: 64 << 20,
        stale_upload_age: Duration::from_secs(3600),
    }
}

async fn setup() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).await.unwrap();
    engine
        .create_bucket("b", BucketSettings::default())
        .await
        .unwrap();
    (dir, engine)
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

fn body(data: &[u8]) -> ByteStream {
    let chunks: Vec<crate::error::Result<Bytes>> = data
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

fn failing_body(data: &[u8]) -> ByteStream {
    let mut chunks: Vec<crate::error::Result<Bytes>> = data
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    chunks.push(Err(crate::error::Error::internal(anyhow::anyhow!(
        "the client went away"
    ))));
    futures::stream::iter(chunks).boxed()
}

fn ok() -> Verify {
    Box::new(|_| Ok(()))
}

async fn read_all(stream: ByteStream) -> Vec<u8> {
    stream
        .try_fold(Vec::new(), |mut acc, b| async move {
            acc.extend_from_slice(&b);
            Ok(acc)
        })
        .await
        .unwrap()
}

async fn put(engine: &Engine, key: &str, data: &[u8]) -> Result<ObjectInfo> {
    engine
        .put_object("b", key, PutOptions::default(), body(data), ok())
        .await
}

async fn get(engine: &Engine, key: &str, range: Option<std::ops::Range<u64>>) -> Vec<u8> {
    read_all(engine.read_object("b", key, range).await.unwrap().1).await
}

/// Every file under `blobs/`, staging files included.
fn blob_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.join("blobs")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

fn kind<T: std::fmt::Debug>(r: Result<T>) -> Kind {
    r.unwrap_err().kind()
}

// ----- objects -----

#[tokio::test]
async fn put_get_roundtrip() {
    let (dir, engine) = setup().await;
    for (key, len) in [("small", 1000), ("large", 5 * MIB + 123)] {
        let bytes = data(len, 1);
        let opts = PutOptions {
            checksum: Some(ChecksumAlgorithm::Crc32c),
            headers: ObjectHeaders {
                content_type: Some("text/plain".into()),
                user_metadata: vec![("a".into(), "1".into())],
                ..Default::default()
            },
            ..Default::default()
        };
        let info = engine
            .put_object("b", key, opts, body(&bytes), ok())
            .await
            .unwrap();
        assert_eq!(info.size, len as u64);
        assert_eq!(info.etag, md5_hex(&bytes));
        let sum = info.checksum.clone().unwrap();
        assert_eq!(
            sum.value,
            checksum::checksum(ChecksumAlgorithm::Crc32c, &bytes).to_base64()
        );
        assert_eq!(engine.head_object("b", key).await.unwrap(), info);
        assert_eq!(get(&engine, key, None).await, bytes);
        assert_eq!(get(&engine, key, Some(100..900)).await, &bytes[100..900]);
    }
    // Large reads stream in large chunks.
    let (_, stream) = engine.read_object("b", "large", None).await.unwrap();
    let sizes: Vec<usize> = stream.map(|c| c.unwrap().len()).collect().await;
    assert!(sizes[..sizes.len() - 1].iter().all(|&s| s >= 256 * 1024));
    assert_eq!(blob_files(dir.path()).len(), 2);
    assert_eq!(
        kind(engine.head_object("b", "nope").await),
        Kind::NotFound(What::Key)
    );
    assert_eq!(
        kind(engine.head_object("x", "k").await),
        Kind::NotFound(What::Bucket)
    );
    assert_eq!(
        kind(engine.read_object("x", "k", None).await.map(drop)),
        Kind::NotFound(What::Bucket)
    );
}

#[tokio::test]
async fn empty_object_has_no_blob() {
    let (dir, engine) = setup().await;
    let info = put(&engine, "dir/", b"").await.unwrap();
    assert_eq!(info.etag, md5_hex(b""));
    assert!(get(&engine, "dir/", None).await.is_empty());
    assert!(blob_files(dir.path()).is_empty());
}

#[tokio::test]
async fn completed_uploads_answer_retries_until_their_retention_is_swept() {
    let (_dir, engine) = setup().await;
    let up = engine
        .create_upload("b", "m", ObjectHeaders::default(), None)
        .await
        .unwrap();
    let listed = upload_parts(&engine, "m", &up, &[b"one part".to_vec()]).await;
    let complete = |parts: Vec<CompletedPart>| {
        engine.complete_upload(
            "b",
            "m",
            &up.upload_id,
            parts,
            WriteCondition::default(),
            None,
        )
    };
    let first = complete(listed.clone()).await.unwrap();
    assert_eq!(complete(listed.clone()).await.unwrap(), first);
    let now = std::time::SystemTime::now();
    engine.sweep_stale_uploads(now).await.unwrap();
    assert_eq!(
        complete(listed.clone()).await.unwrap(),
        first,
        "within retention"
    );
    let later = now + multipart::COMPLETED_RETENTION + Duration::from_secs(60);
    engine.sweep_stale_uploads(later).await.unwrap();
    assert_eq!(kind(complete(listed).await), Kind::NotFound(What::Upload));
}

#[tokio::test]
async fn keys_are_not_paths() {
    let (dir, engine) = setup().await;
    let keys = [
        "a",
        "a/b",
        "../x",
        "a//b",
        "dir/",
        "/lead",
        "a/../../etc/passwd",
    ];
    for (i, k) in keys.iter().enumerate() {
        put(&engine, k, &[i as u8; 10]).await.unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(get(&engine, k, None).await, [i as u8; 10]);
    }
    let page = engine
        .list_objects(
            "b",
            ListQuery {
                max_keys: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.objects.len(), keys.len());
    assert!(!dir.path().join("etc").exists());
    assert_eq!(
        kind(put(&engine, &"k".repeat(1025), b"x").await),
        Kind::Invalid(Invalid::KeyTooLong)
    );
    assert!(put(&engine, &"k".repeat(1024), b"x").await.is_ok());
}

#[tokio::test]
async fn overwrite_deletes_the_old_blob() {
    let (dir, engine) = setup().await;
    put(&engine, "k", &data(3 * MIB, 1)).await.unwrap();
    put(&engine, "k", &data(1000, 2)).await.unwrap();
    assert_eq!(get(&engine, "k", None).await, data(1000, 2));
    assert_eq!(blob_files(dir.path()).len(), 1);
    engine
        .delete_object("b", "k", WriteCondition::default())
        .await
        .unwrap();
    engine
        .delete_object("b", "k", WriteCondition::default())
        .await
        .unwrap(); // absent: fine
    assert!(blob_files(dir.path()).is_empty());
    assert_eq!(
        kind(
            engine
                .delete_object("nope", "k", WriteCondition::default())
                .await
        ),
        Kind::NotFound(What::Bucket)
    );
}

#[tokio::test]
async fn failing_verify_keeps_the_old_object() {
    let (dir, engine) = setup().await;
    put(&engine, "k", b"old").await.unwrap();
    for len in [100, 3 * MIB] {
        let verify: Verify = Box::new(|d: &Digests| {
            assert!(d.size > 0);
            Err(crate::error::Error::internal(anyhow::anyhow!(
                "digest refused"
            )))
        });
        let r = engine
            .put_object("b", "k", PutOptions::default(), body(&data(len, 3)), verify)
            .await;
        assert_eq!(kind(r), Kind::Rejected);
        assert_eq!(get(&engine, "k", None).await, b"old");
        assert_eq!(blob_files(dir.path()).len(), 1, "no orphan after {len}");
    }
}

#[tokio::test]
async fn stream_error_leaves_nothing() {
    let (dir, engine) = setup().await;
    for len in [100, 5 * MIB] {
        let r = engine
            .put_object(
                "b",
                "k",
                PutOptions::default(),
                failing_body(&data(len, 1)),
                ok(),
            )
            .await;
        assert_eq!(kind(r), Kind::Rejected);
        assert_eq!(
            kind(engine.head_object("b", "k").await),
            Kind::NotFound(What::Key)
        );
        assert!(blob_files(dir.path()).is_empty(), "{len}");
    }
}

#[tokio::test]
async fn size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.max_object_size = 3 * MIB as u64;
    let engine = Engine::open(cfg).await.unwrap();
    engine
        .create_bucket("b", BucketSettings::default())
        .await
        .unwrap();
    assert!(put(&engine, "k", &data(3 * MIB, 0)).await.is_ok());
    assert_eq!(
        kind(put(&engine, "k2", &data(3 * MIB + 1, 0)).await),
        Kind::Invalid(Invalid::TooLarge)
    );
    let up = engine
        .create_upload("b", "m", ObjectHeaders::default(), None)
        .await
        .unwrap();
    let r = engine
        .upload_part("b", "m", &up.upload_id, 1, body(&data(4 * MIB, 0)), ok())
        .await;
    assert_eq!(kind(r), Kind::Invalid(Invalid::TooLarge));
    assert_eq!(blob_files(dir.path()).len(), 1);
}

#[tokio::test]
async fn conditional_writes_race() {
    let (dir, engine) = setup().await;
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let opts = PutOptions {
                    condition: WriteCondition {
                        if_none_match_any: true,
                        if_match: None,
                        ..WriteCondition::default()
                    },
                    ..Default::default()
                };
                engine
                    .put_object("b", "race", opts, body(&data(10_000, i)), ok())
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(e) => assert_eq!(e.kind(), Kind::Precondition),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(blob_files(dir.path()).len(), 1);

    let current = engine.head_object("b", "race").await.unwrap();
    let if_match = |etag: &str| PutOptions {
        condition: WriteCondition {
            if_none_match_any: false,
            if_match: Some(etag.into()),
            ..WriteCondition::default()
        },
        ..Default::default()
    };
    let r = engine
        .put_object("b", "race", if_match("bad"), body(b"x"), ok())
        .await;
    assert_eq!(kind(r), Kind::Precondition);
    let r = engine
        .put_object("b", "none", if_match("*"), body(b"x"), ok())
        .await;
    assert_eq!(kind(r), Kind::NotFound(What::Key));
    let r = engine
        .put_object("b", "race", if_match(&current.etag), body(b"x"), ok())
        .await;
    assert!(r.is_ok());
    assert_eq!(blob_files(dir.path()).len(), 1);
}

#[tokio::test]
async fn read_version_sees_one_version() {
    let (_dir, engine) = setup().await;
    let v1 = put(&engine, "k", b"one").await.unwrap();
    let renamed = engine
        .replace_headers(
            "b",
            "k",
            ObjectHeaders {
                content_type: Some("x/y".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.etag, v1.etag);
    assert_eq!(renamed.headers.content_type.as_deref(), Some("x/y"));
    assert_eq!(
        read_all(engine.read_version("b", &v1, Some(1..3)).await.unwrap()).await,
        b"ne"
    );
    put(&engine, "k", b"two").await.unwrap();
    assert_eq!(
        kind(engine.read_version("b", &v1, None).await.map(drop)),
        Kind::NotFound(What::Key)
    );
    assert_eq!(
        kind(
            engine
                .replace_headers("b", "nope", ObjectHeaders::default())
                .await
        ),
        Kind::NotFound(What::Key)
    );
}

#[tokio::test]
async fn delete_objects_in_one_call() {
    let (dir, engine) = setup().await;
    for k in ["a", "b", "c"] {
        put(&engine, k, k.as_bytes()).await.unwrap();
    }
    let keys = ["a", "c", "absent"].map(|k| (k.to_owned(), WriteCondition::default()));
    let outcomes = engine.delete_objects("b", keys.to_vec()).await.unwrap();
    assert!(outcomes.iter().all(Result::is_ok));
    let page = engine
        .list_objects(
            "b",
            ListQuery {
                max_keys: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page.objects
            .iter()
            .map(|o| o.key.as_str())
            .collect::<Vec<_>>(),
        ["b"]
    );
    assert_eq!(blob_files(dir.path()).len(), 1);
}

// ----- buckets -----

#[tokio::test]
async fn buckets() {
    let (dir, engine) = setup().await;
    assert_eq!(
        kind(engine.create_bucket("b", BucketSettings::default()).await),
        Kind::AlreadyExists
    );
    engine
        .create_bucket("a", BucketSettings::default())
        .await
        .unwrap();
    let names: Vec<_> = engine
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    let settings = BucketSettings {
        policy: Some("{}".into()),
        public_read_acl: true,
        website: None,
    };
    engine
        .set_bucket_settings("a", settings.clone())
        .await
        .unwrap();
    assert_eq!(engine.bucket("a").await.unwrap().settings, settings);
    assert_eq!(
        kind(engine.set_bucket_settings("z", settings).await),
        Kind::NotFound(What::Bucket)
    );

    put(&engine, "k", b"x").await.unwrap();
    let up = engine
        .create_upload("b", "m", ObjectHeaders::default(), None)
        .await
        .unwrap();
    engine
        .upload_part("b", "m", &up.upload_id, 1, body(b"part"), ok())
        .await
        .unwrap();
    assert_eq!(kind(engine.delete_bucket("b").await), Kind::NotEmpty);
    assert_eq!(
        kind(engine.delete_bucket("zz").await),
        Kind::NotFound(What::Bucket)
    );
    engine
        .delete_object("b", "k", WriteCondition::default())
        .await
        .unwrap();
    engine.delete_bucket("b").await.unwrap();
    assert_eq!(kind(engine.bucket("b").await), Kind::NotFound(What::Bucket));
    assert!(
        blob_files(dir.path()).is_empty(),
        "uploads aborted with the bucket"
    );
    // A write racing the delete fails at commit rather than resurrecting the bucket.
    assert_eq!(
        kind(put(&engine, "k", b"x").await),
        Kind::NotFound(What::Bucket)
    );
}

// ----- listing -----

async fn list(
    engine: &Engine,
    prefix: &str,
    delimiter: Option<&str>,
    after: Option<&str>,
    max: usize,
) -> ListPage {
    engine
        .list_objects(
            "b",
            ListQuery {
                prefix: prefix.into(),
                delimiter: delimiter.map(Into::into),
                start_after: after.map(Into::into),
                max_keys: max,
            },
        )
        .await
        .unwrap()
}

fn ids(v: &[UploadInfo]) -> Vec<&str> {
    v.iter().map(|u| u.upload_id.as_str()).collect()
}

fn keys(page: &ListPage) -> Vec<&str> {
    page.objects.iter().map(|o| o.key.as_str()).collect()
}

#[tokio::test]
async fn list_prefix_delimiter_start_after() {
    let (_dir, engine) = setup().await;
    engine
        .create_bucket("other", BucketSettings::default())
        .await
        .unwrap();
    engine
        .put_object("other", "a0", PutOptions::default(), body(b"x"), ok())
        .await
        .unwrap();
    for k in ["a", "a/b", "a/b/c", "a/c", "b", "c/d/e"] {
        put(&engine, k, k.as_bytes()).await.unwrap();
    }
    let all = list(&engine, "", None, None, 100).await;
    assert_eq!(keys(&all), ["a", "a/b", "a/b/c", "a/c", "b", "c/d/e"]);
    assert!(!all.is_truncated);
    assert_eq!(all.next_marker.as_deref(), Some("c/d/e"));
    assert_eq!(all.objects[0].size, 1);

    let top = list(&engine, "", Some("/"), None, 100).await;
    assert_eq!(keys(&top), ["a", "b"]);
    assert_eq!(top.common_prefixes, ["a/", "c/"]);

    let sub = list(&engine, "a/", Some("/"), None, 100).await;
    assert_eq!(keys(&sub), ["a/b", "a/c"]);
    assert_eq!(sub.common_prefixes, ["a/b/"]);

    let pre = list(&engine, "a", None, None, 100).await;
    assert_eq!(keys(&pre), ["a", "a/b", "a/b/c", "a/c"]);

    // start_after inside a group: that group was already returned.
    let after = list(&engine, "", Some("/"), Some("a/b"), 100).await;
    assert_eq!(keys(&after), ["b"]);
    assert_eq!(after.common_prefixes, ["c/"]);
    // start_after before the prefix is ignored.
    assert_eq!(keys(&list(&engine, "b", None, Some("a"), 100).await), ["b"]);

    // Pagination with the marker visits every entry once; the last page is not truncated.
    for max in 1..=4 {
        let mut seen = Vec::new();
        let mut marker: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = list(&engine, "", Some("/"), marker.as_deref(), max).await;
            pages += 1;
            assert!(page.objects.len() + page.common_prefixes.len() <= max);
            let mut entries: Vec<String> = keys(&page).iter().map(|s| s.to_string()).collect();
            entries.extend(page.common_prefixes.iter().cloned());
            entries.sort();
            seen.extend(entries);
            if !page.is_truncated {
                assert_eq!(page.next_marker.as_deref(), Some("c/"));
                break;
            }
            marker = page.next_marker.clone();
        }
        assert_eq!(seen, ["a", "a/", "b", "c/"], "max {max}");
        assert_eq!(pages, 4usize.div_ceil(max), "max {max}");
    }
    let page = list(&engine, "", None, None, 0).await;
    assert!(page.objects.is_empty() && !page.is_truncated);
    assert_eq!(
        kind(engine.list_objects("nope", ListQuery::default()).await),
        Kind::NotFound(What::Bucket)
    );
}

#[tokio::test]
async fn list_is_utf8_byte_order() {
    let (_dir, engine) = setup().await;
    let mut names = vec![
        "z",
        "é",
        "日本",
        "a",
        "\u{10000}",
        "Z",
        "e\u{301}",
        "\u{FFFF}",
        "~",
    ];
    for k in &names {
        put(&engine, k, b"x").await.unwrap();
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(keys(&list(&engine, "", None, None, 100).await), names);
    // Non-ASCII delimiter and groups.
    for k in ["x→1→a", "x→1→b", "x→2", "x→"] {
        put(&engine, k, b"x").await.unwrap();
    }
    let page = list(&engine, "x→", Some("→"), None, 100).await;
    assert_eq!(keys(&page), ["x→", "x→2"]);
    assert_eq!(page.common_prefixes, ["x→1→"]);
}

#[tokio::test]
async fn delimiter_listing_seeks_past_groups() {
    let (_dir, engine) = setup().await;
    // Write 20k rows directly: going through put_object would spend the time in fsyncs.
    engine
        .inner
        .index
        .write(|txn| {
            let mut t = txn.open_table(OBJECTS)?;
            let rec = index::encode(&ObjectRecord {
                size: 1,
                etag: "e".into(),
                ..Default::default()
            })?;
            for i in 0..20_000 {
                let key = format!("dir{}/file{i:05}", i % 10);
                t.insert(("b", key.as_str()), rec.as_slice())?;
            }
            for i in 0..5 {
                t.insert(("b", format!("top{i}").as_str()), rec.as_slice())?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let q = ListQuery {
        delimiter: Some("/".into()),
        max_keys: 1000,
        ..Default::default()
    };
    let (page, scanned) = objects::list(&engine.inner, "b", q).await.unwrap();
    assert_eq!(page.common_prefixes.len(), 10);
    assert_eq!(page.objects.len(), 5);
    assert!(!page.is_truncated);
    assert!(scanned <= 20, "scanned {scanned} entries");

    let q = ListQuery {
        prefix: "dir3/".into(),
        delimiter: Some("/".into()),
        max_keys: 10,
        ..Default::default()
    };
    let (page, scanned) = objects::list(&engine.inner, "b", q).await.unwrap();
    assert_eq!(page.objects[0].key, "dir3/file00003");
    assert!(page.is_truncated);
    assert_eq!(page.next_marker.as_deref(), Some("dir3/file00093"));
    assert!(scanned <= 12);
}

// ----- multipart -----

async fn upload_parts(
    engine: &Engine,
    key: &str,
    up: &UploadInfo,
    parts: &[Vec<u8>],
) -> Vec<CompletedPart> {
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let info = engine
            .upload_part("b", key, &up.upload_id, i as u32 + 1, body(p), ok())
            .await
            .unwrap();
        assert_eq!(info.etag, md5_hex(p));
        out.push(CompletedPart {
            part_number: info.part_number,
            etag: format!("\"{}\"", info.etag),
            checksum: info.checksum,
        });
    }
    out
}

#[tokio::test]
async fn multipart_range_reads_across_segments() {
    let (dir, engine) = setup().await;
    let parts = vec![data(5 * MIB, 1), data(5 * MIB + 1, 2), data(1000, 3)];
    let up = engine
        .create_upload(
            "b",
            "m",
            ObjectHeaders {
                content_type: Some("a/b".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    let listed = upload_parts(&engine, "m", &up, &parts).await;
    let info = engine
        .complete_upload(
            "b",
            "m",
            &up.upload_id,
            listed,
            WriteCondition::default(),
            None,
        )
        .await
        .unwrap();
    let whole: Vec<u8> = parts.concat();
    let mut md5s = Md5::new();
    for p in &parts {
        md5s.update(Md5::digest(p));
    }
    assert_eq!(info.etag, format!("{}-3", hex::encode(md5s.finalize())));
    assert_eq!(info.size, whole.len() as u64);
    let head = engine.head_object("b", "m").await.unwrap();
    assert_eq!((head.etag, head.size), (info.etag.clone(), info.size));
    assert_eq!(head.parts.len(), 3);
    assert_eq!(head.headers.content_type.as_deref(), Some("a/b"));
    assert_eq!(
        blob_files(dir.path()).len(),
        3,
        "parts are the segments: no copy"
    );
    assert_eq!(
        kind(engine.upload("b", "m", &up.upload_id).await),
        Kind::NotFound(What::Upload)
    );

    let p1 = 5 * MIB as u64;
    let p2 = p1 + 5 * MIB as u64 + 1;
    let n = whole.len() as u64;
    for r in [
        0..n,
        0..10,
        10..p1,
        p1 - 5..p1 + 5,
        p1..p2,
        p1 - 1..p2 + 1,
        n - 1..n,
        3..n - 3,
        p2..n,
    ] {
        assert_eq!(
            get(&engine, "m", Some(r.clone())).await,
            &whole[r.start as usize..r.end as usize],
            "{r:?}"
        );
    }
    // Overwriting the multipart object removes all its segments.
    put(&engine, "m", b"x").await.unwrap();
    assert_eq!(blob_files(dir.path()).len(), 1);
}

#[tokio::test]
async fn complete_errors() {
    let (dir, engine) = setup().await;
    let up = engine
        .create_upload("b", "m", ObjectHeaders::default(), None)
        .await
        .unwrap();
    let parts = vec![data(MIN_PART_SIZE as usize, 1), data(1000, 2), data(10, 3)];
    let listed = upload_parts(&engine, "m", &up, &parts).await;
    let id = up.upload_id.as_str();
    let complete = |parts: Vec<CompletedPart>| {
        engine.complete_upload("b", "m", id, parts, WriteCondition::default(), None)
    };
    let p = |n: u32, etag: &str| CompletedPart {
        part_number: n,
        etag: etag.into(),
        checksum: None,
    };
    let etag = |i: usize| listed[i].etag.clone();

    assert_eq!(
        kind(complete(vec![]).await),
        Kind::Invalid(Invalid::NoParts)
    );
    assert_eq!(
        kind(complete(vec![p(2, &etag(1)), p(1, &etag(0))]).await),
        Kind::Invalid(Invalid::PartOrder)
    );
    assert_eq!(
        kind(complete(vec![p(1, &etag(0)), p(1, &etag(0))]).await),
        Kind::Invalid(Invalid::PartOrder)
    );
    assert_eq!(
        kind(complete(vec![p(1, &etag(0)), p(4, &etag(0))]).await),
        Kind::Invalid(Invalid::PartMismatch)
    );
    assert_eq!(
        kind(complete(vec![p(1, &etag(1))]).await),
        Kind::Invalid(Invalid::PartMismatch)
    );
    assert_eq!(
        kind(complete(vec![p(2, &etag(1)), p(3, &etag(2))]).await),
        Kind::Invalid(Invalid::PartTooSmall)
    );
    assert_eq!(
        kind(
            engine
                .complete_upload(
                    "b",
                    "m",
                    "nope",
                    vec![p(1, &etag(0))],
                    WriteCondition::default(),
                    None
                )
                .await
        ),
        Kind::NotFound(What::Upload)
    );
    assert_eq!(
        kind(
            engine
                .upload_part("b", "m", "nope", 1, body(b"x"), ok())
                .await
        ),
        Kind::NotFound(What::Upload)
    );
    assert_eq!(
        kind(
            engine
                .upload_part("b", "other", id, 1, body(b"x"), ok())
                .await
        ),
        Kind::NotFound(What::Upload)
    );
    assert_eq!(
        kind(engine.upload_part("b", "m", id, 0, body(b"x"), ok()).await),
        Kind::Invalid(Invalid::PartNumber)
    );
    assert_eq!(
        kind(
            engine
                .upload_part("b", "m", id, 10_001, body(b"x"), ok())
                .await
        ),
        Kind::Invalid(Invalid::PartNumber)
    );

    put(&engine, "m", b"existing").await.unwrap();
    let cond = WriteCondition {
        if_none_match_any: true,
        if_match: None,
        ..WriteCondition::default()
    };
    let r = engine
        .complete_upload(
            "b",
            "m",
            id,
            vec![p(1, &etag(0)), p(3, &etag(2))],
            cond,
            None,
        )
        .await;
    assert_eq!(kind(r), Kind::Precondition);
    assert_eq!(get(&engine, "m", None).await, b"existing");

    // The failures left the upload intact; unlisted part 2 and the replaced object go away.
    let info = complete(vec![p(1, &etag(0)), p(3, &etag(2))])
        .await
        .unwrap();
    assert_eq!(info.size, MIN_PART_SIZE + 10);
    assert_eq!(
        get(&engine, "m", Some(MIN_PART_SIZE - 2..MIN_PART_SIZE + 10)).await,
        [&parts[0][parts[0].len() - 2..], &parts[2][..]].concat()
    );
    assert_eq!(blob_files(dir.path()).len(), 2);
}

#[tokio::test]
async fn part_replacement_and_listing() {
    let (dir, engine) = setup().await;
    let up = engine
        .create_upload("b", "m", ObjectHeaders::default(), None)
        .await
        .unwrap();
    let id = up.upload_id.clone();
    for round in 0..2u8 {
        for n in 1..=3 {
            engine
                .upload_part("b", "m", &id, n, body(&data(100, round)), ok())
                .await
                .unwrap();
        }
    }
    assert_eq!(blob_files(dir.path()).len(), 3);
    let (u, parts, truncated) = engine
        .list_parts(
            "b",
            "m",
            &id,
            ListPartsQuery {
                part_number_marker: 0,
                max_parts: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(u, up);
    assert!(truncated);
    assert_eq!(
        parts.iter().map(|p| p.part_number).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(parts[0].etag, md5_hex(&data(100, 1)));
    let (_, parts, truncated) = engine
        .list_parts(
            "b",
            "m",
            &id,
            ListPartsQuery {
                part_number_marker: 2,
                max_parts: 2,
            },
        )
        .await
        .unwrap();
    assert!(!truncated);
    assert_eq!(parts.iter().map(|p| p.part_number).collect::<Vec<_>>(), [3]);

    // Uploads list in (key, initiated) order.
    let up2 = engine
        .create_upload("b", "m", ObjectHeaders::default(), None)
        .await
        .unwrap();
    let up3 = engine
        .create_upload("b", "a", ObjectHeaders::default(), None)
        .await
        .unwrap();
    let up4 = engine
        .create_upload("b", "z/x", ObjectHeaders::default(), None)
        .await
        .unwrap();
    let q = |prefix: &str, km: Option<&str>, um: Option<&str>, max| ListUploadsQuery {
        prefix: prefix.into(),
        key_marker: km.map(Into::into),
        upload_id_marker: um.map(Into::into),
        max_uploads: max,
    };
    let (all, t) = engine
        .list_uploads("b", q("", None, None, 10))
        .await
        .unwrap();
    assert!(!t);
    assert_eq!(
        ids(&all),
        [
            up3.upload_id.as_str(),
            id.as_str(),
            up2.upload_id.as_str(),
            up4.upload_id.as_str()
        ]
    );
    let (page, t) = engine
        .list_uploads("b", q("", None, None, 2))
        .await
        .unwrap();
    assert!(t);
    assert_eq!(ids(&page), [up3.upload_id.as_str(), id.as_str()]);
    let (page, _) = engine
        .list_uploads("b", q("", Some("m"), Some(&id), 10))
        .await
        .unwrap();
    assert_eq!(ids(&page), [up2.upload_id.as_str(), up4.upload_id.as_str()]);
    let (page, _) = engine
        .list_uploads("b", q("", Some("m"), None, 10))
        .await
        .unwrap();
    assert_eq!(ids(&page), [up4.upload_id.as_str()]);
    let (page, _) = engine
        .list_uploads("b", q("z/", None, None, 10))
        .await
        .unwrap();
    assert_eq!(ids(&page), [up4.upload_id.as_str()]);

    engine.abort_upload("b", "m", &id).await.unwrap();
    assert!(blob_files(dir.path()).is_empty());
    assert_eq!(
        kind(engine.abort_upload("b", "m", &id).await),
        Kind::NotFound(What::Upload)
    );
    assert_eq!(
        kind(
            engine
                .list_parts("b", "m", &id, ListPartsQuery::default())
                .await
        ),
        Kind::NotFound(What::Upload)
    );
}

#[tokio::test]
async fn multipart_checksums() {
    let (_dir, engine) = setup().await;
    let parts = vec![data(MIN_PART_SIZE as usize, 1), data(777, 2)];
    let whole = parts.concat();

    // COMPOSITE: checksum of the part checksums, "-N".
    let algo = ChecksumAlgorithm::Crc32;
    let up = engine
        .create_upload(
            "b",
            "c",
            ObjectHeaders::default(),
            Some((algo, ChecksumType::Composite)),
        )
        .await
        .unwrap();
    let listed = upload_parts(&engine, "c", &up, &parts).await;
    let raw: Vec<ChecksumValue> = parts.iter().map(|p| checksum::checksum(algo, p)).collect();
    assert_eq!(
        listed[0].checksum.as_deref(),
        Some(raw[0].to_base64().as_str())
    );
    let mut wrong = listed.clone();
    wrong[1].checksum = Some(raw[0].to_base64());
    let r = engine
        .complete_upload(
            "b",
            "c",
            &up.upload_id,
            wrong,
            WriteCondition::default(),
            None,
        )
        .await;
    assert_eq!(kind(r), Kind::Invalid(Invalid::PartMismatch));
    let mut without = listed.clone();
    without[0].checksum = None; // clients list checksums only if UploadPart echoed them
    let info = engine
        .complete_upload(
            "b",
            "c",
            &up.upload_id,
            without,
            WriteCondition::default(),
            None,
        )
        .await
        .unwrap();
    let sum = info.checksum.unwrap();
    assert_eq!(sum.kind, ChecksumType::Composite);
    assert_eq!(sum.value, checksum::composite(algo, &raw));
    assert!(sum.value.ends_with("-2"));
    let head = engine.head_object("b", &info.key).await.unwrap();
    assert_eq!(
        head.parts[1].checksum.as_deref(),
        Some(raw[1].to_base64().as_str())
    );

    // FULL_OBJECT: the CRC of the whole object.
    let algo = ChecksumAlgorithm::Crc64Nvme;
    let up = engine
        .create_upload(
            "b",
            "f",
            ObjectHeaders::default(),
            Some((algo, ChecksumType::FullObject)),
        )
        .await
        .unwrap();
    let listed = upload_parts(&engine, "f", &up, &parts).await;
    let info = engine
        .complete_upload(
            "b",
            "f",
            &up.upload_id,
            listed,
            WriteCondition::default(),
            None,
        )
        .await
        .unwrap();
    let sum = info.checksum.unwrap();
    assert_eq!(sum.kind, ChecksumType::FullObject);
    assert_eq!(sum.value, checksum::checksum(algo, &whole).to_base64());

    let r = engine
        .create_upload(
            "b",
            "s",
            ObjectHeaders::default(),
            Some((ChecksumAlgorithm::Sha256, ChecksumType::FullObject)),
        )
        .await;
    assert_eq!(kind(r), Kind::Invalid(Invalid::ChecksumAlgorithm));
}

#[tokio::test]
async fn stale_uploads_are_swept() {
    let (dir, engine) = setup().await;
    let up = engine
        .create_upload("b", "m", ObjectHeaders::default(), None)
        .await
        .unwrap();
    engine
        .upload_part("b", "m", &up.upload_id, 1, body(b"part"), ok())
        .await
        .unwrap();
    let now = std::time::SystemTime::now();
    assert_eq!(engine.sweep_stale_uploads(now).await.unwrap(), 0);
    assert_eq!(
        engine
            .sweep_stale_uploads(now + Duration::from_secs(7200))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        kind(engine.upload("b", "m", &up.upload_id).await),
        Kind::NotFound(What::Upload)
    );
    assert!(blob_files(dir.path()).is_empty());
}

// ----- durability and sweeping -----

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
    assert_eq!(blob_files(dir.path()).len(), 3); // object, part, foreign file
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

/// `cargo test -p outpost-store --release --lib engine::tests::throughput -- --ignored --nocapture`
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

#[tokio::test]
async fn conditional_deletes_are_checked_in_the_deleting_transaction() {
    let (_dir, engine) = setup().await;
    put(&engine, "k", b"v1").await.unwrap();
    let etag = engine.head_object("b", "k").await.unwrap().etag;
    let cond = |if_match: &str, size: Option<u64>| WriteCondition {
        if_match: (!if_match.is_empty()).then(|| if_match.to_owned()),
        if_match_size: size,
        ..WriteCondition::default()
    };
    let failed = engine.delete_object("b", "k", cond("0123", None)).await;
    assert_eq!(kind(failed), Kind::Precondition);
    let failed = engine.delete_object("b", "k", cond("", Some(3))).await;
    assert_eq!(kind(failed), Kind::Precondition);
    assert!(engine.head_object("b", "k").await.is_ok(), "kept");
    let keys = vec![
        ("k".to_owned(), cond(&format!("\"{etag}\""), Some(2))),
        ("absent".to_owned(), cond("*", None)),
        ("absent".to_owned(), cond("", Some(9))),
    ];
    let outcomes = engine.delete_objects("b", keys).await.unwrap();
    assert!(outcomes[0].is_ok());
    assert_eq!(
        outcomes[1].as_ref().unwrap_err().kind(),
        Kind::NotFound(What::Key)
    );
    assert!(
        outcomes[2].is_ok(),
        "size alone on an absent key: deleted, as S3"
    );
    assert_eq!(
        kind(engine.head_object("b", "k").await),
        Kind::NotFound(What::Key)
    );
}
