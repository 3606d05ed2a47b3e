//! Multipart uploads: parts as segments, Complete and its errors, retries, checksums, sweeps.

use super::*;

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
    assert!(blob_files(dir.path()).is_empty());
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
    let later = now + crate::engine::multipart::COMPLETED_RETENTION + Duration::from_secs(60);
    engine.sweep_stale_uploads(later).await.unwrap();
    assert_eq!(kind(complete(listed).await), Kind::NotFound(What::Upload));
}

fn ids(v: &[UploadInfo]) -> Vec<&str> {
    v.iter().map(|u| u.upload_id.as_str()).collect()
}
