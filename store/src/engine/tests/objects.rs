//! PUT, GET, DELETE of objects: keys are not paths, overwrites, failed writes, conditions.

use super::*;

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
    // The small body is kept in the index, the large one in a blob.
    assert_eq!(blob_files(dir.path()).len(), 1);
    assert_eq!(inline_bodies(&engine).await, ["small"]);
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
    // The new body is inline: the old one's blob is gone.
    assert_eq!(blob_files(dir.path()).len(), 0);
    put(&engine, "k", &data(3 * MIB, 3)).await.unwrap();
    assert_eq!(get(&engine, "k", None).await, data(3 * MIB, 3));
    assert_eq!(blob_files(dir.path()).len(), 1);
    assert!(
        inline_bodies(&engine).await.is_empty(),
        "a blob replaced the inline body"
    );
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
        assert_eq!(blob_files(dir.path()).len(), 0, "no orphan after {len}");
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
                    // Larger than INLINE_MAX: the losers' blobs must go too.
                    .put_object("b", "race", opts, body(&data(100_000, i)), ok())
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
    assert!(
        blob_files(dir.path()).is_empty(),
        "replaced by an inline body"
    );
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
    assert!(blob_files(dir.path()).is_empty());
    assert_eq!(
        inline_bodies(&engine).await,
        ["b"],
        "deleted with their rows"
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

/// Bodies up to INLINE_MAX live in the index with their row: no blob file, readable whole and
/// by range, and their row goes when the object is replaced (by a blob, by a multipart
/// upload) or deleted.
#[tokio::test]
async fn small_bodies_are_kept_in_the_index_with_their_entry() {
    let (dir, engine) = setup().await;
    let max = crate::engine::objects::INLINE_MAX;
    put(&engine, "edge", &data(max, 1)).await.unwrap();
    put(&engine, "over", &data(max + 1, 2)).await.unwrap();
    assert_eq!(inline_bodies(&engine).await, ["edge"]);
    assert_eq!(
        blob_files(dir.path()).len(),
        1,
        "only the larger body has a blob"
    );
    assert_eq!(get(&engine, "edge", None).await, data(max, 1));
    assert_eq!(
        get(&engine, "edge", Some(10..20)).await,
        &data(max, 1)[10..20]
    );
    assert_eq!(get(&engine, "over", None).await, data(max + 1, 2));

    // A read of a version replaced meanwhile is refused, as for blobs.
    let v1 = engine.head_object("b", "edge").await.unwrap();
    put(&engine, "edge", b"second").await.unwrap();
    assert_eq!(
        kind(engine.read_version("b", &v1, None).await.map(drop)),
        Kind::NotFound(What::Key)
    );
    let v2 = engine.head_object("b", "edge").await.unwrap();
    assert_eq!(
        read_all(engine.read_version("b", &v2, None).await.unwrap()).await,
        b"second"
    );

    // Replaced by a multipart object: the inline body goes in the same transaction.
    let up = engine
        .create_upload("b", "edge", ObjectHeaders::default(), None)
        .await
        .unwrap();
    let part = engine
        .upload_part("b", "edge", &up.upload_id, 1, body(b"part"), ok())
        .await
        .unwrap();
    let listed = vec![CompletedPart {
        part_number: 1,
        etag: part.etag,
        checksum: None,
    }];
    engine
        .complete_upload(
            "b",
            "edge",
            &up.upload_id,
            listed,
            WriteCondition::default(),
            None,
        )
        .await
        .unwrap();
    assert!(inline_bodies(&engine).await.is_empty());
    assert_eq!(get(&engine, "edge", None).await, b"part");

    put(&engine, "gone", b"soon deleted").await.unwrap();
    engine
        .delete_object("b", "gone", WriteCondition::default())
        .await
        .unwrap();
    assert!(inline_bodies(&engine).await.is_empty());
    assert_eq!(
        kind(engine.head_object("b", "gone").await),
        Kind::NotFound(What::Key)
    );
}
