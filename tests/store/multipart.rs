//! Multipart uploads: Create, UploadPart, UploadPartCopy (with range), Complete (ETag
//! md5-of-md5s-N, InvalidPart, InvalidPartOrder, EntityTooSmall), Abort, ListParts,
//! ListMultipartUploads, s3cmd-style Complete bodies, part-number limits, stale-upload cleanup.

use std::time::Duration;

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ObjectAttributes};

use crate::common::*;

fn completed(parts: Vec<CompletedPart>) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(parts))
        .build()
}

#[tokio::test]
async fn multipart_upload_full_flow() {
    let (_store, s3, b) = TestStore::with_bucket("mpu").await;
    let p1 = random_bytes(5 * MIB, 20);
    let p2 = random_bytes(5 * MIB + 17, 21);
    let p3 = random_bytes(1234, 22);

    let up = s3
        .create_multipart_upload()
        .bucket(&b)
        .key("big/object.bin")
        .content_type("application/x-mp")
        .metadata("kind", "multipart")
        .send()
        .await
        .expect("CreateMultipartUpload");
    let id = up.upload_id().expect("UploadId").to_string();
    assert_eq!(up.key(), Some("big/object.bin"));

    let list = s3
        .list_multipart_uploads()
        .bucket(&b)
        .send()
        .await
        .expect("ListMultipartUploads");
    assert_eq!(
        list.uploads()
            .iter()
            .map(|u| (u.key().unwrap(), u.upload_id().unwrap()))
            .collect::<Vec<_>>(),
        [("big/object.bin", id.as_str())]
    );
    // The object is invisible until completion.
    assert_sdk_err(
        s3.head_object()
            .bucket(&b)
            .key("big/object.bin")
            .send()
            .await,
        404,
        "NotFound",
    );

    let parts = upload_parts(&s3, &b, "big/object.bin", &id, &[&p1, &p2, &p3]).await;

    let lp = s3
        .list_parts()
        .bucket(&b)
        .key("big/object.bin")
        .upload_id(&id)
        .send()
        .await
        .expect("ListParts");
    let got: Vec<_> = lp
        .parts()
        .iter()
        .map(|p| {
            (
                p.part_number().unwrap(),
                p.size().unwrap(),
                p.e_tag().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, p1.len() as i64, etag_of(&p1)),
            (2, p2.len() as i64, etag_of(&p2)),
            (3, p3.len() as i64, etag_of(&p3))
        ]
    );
    // ListParts pagination.
    let lp = s3
        .list_parts()
        .bucket(&b)
        .key("big/object.bin")
        .upload_id(&id)
        .max_parts(2)
        .send()
        .await
        .unwrap();
    assert_eq!(lp.parts().len(), 2);
    assert_eq!(lp.is_truncated(), Some(true));
    let lp2 = s3
        .list_parts()
        .bucket(&b)
        .key("big/object.bin")
        .upload_id(&id)
        .part_number_marker(lp.next_part_number_marker().expect("NextPartNumberMarker"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        lp2.parts()
            .iter()
            .map(|p| p.part_number().unwrap())
            .collect::<Vec<_>>(),
        [3]
    );

    let done = s3
        .complete_multipart_upload()
        .bucket(&b)
        .key("big/object.bin")
        .upload_id(&id)
        .multipart_upload(completed(parts))
        .send()
        .await
        .expect("CompleteMultipartUpload");
    let want_etag = multipart_etag(&[&p1, &p2, &p3]);
    assert_eq!(
        done.e_tag(),
        Some(want_etag.as_str()),
        "md5 of the part md5s, dash, part count"
    );
    assert_eq!(done.key(), Some("big/object.bin"));
    assert_eq!(done.bucket(), Some(b.as_str()));

    let h = s3
        .head_object()
        .bucket(&b)
        .key("big/object.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(h.e_tag(), Some(want_etag.as_str()));
    assert_eq!(
        h.content_length(),
        Some((p1.len() + p2.len() + p3.len()) as i64)
    );
    assert_eq!(
        h.content_type(),
        Some("application/x-mp"),
        "Create's headers apply to the object"
    );
    assert_eq!(
        h.metadata().unwrap().get("kind").map(String::as_str),
        Some("multipart")
    );
    let got = object_bytes(&s3, &b, "big/object.bin").await;
    assert!(
        got == [p1.as_slice(), &p2, &p3].concat(),
        "multipart body is the parts in order"
    );

    // A range across the part boundary reads the right bytes.
    let start = p1.len() - 10;
    let g = s3
        .get_object()
        .bucket(&b)
        .key("big/object.bin")
        .range(format!("bytes={start}-{}", start + 19))
        .send()
        .await
        .unwrap();
    let want = [&p1[start..], &p2[..10]].concat();
    assert_eq!(read_body(g.body).await, want);

    let attrs = s3
        .get_object_attributes()
        .bucket(&b)
        .key("big/object.bin")
        .object_attributes(ObjectAttributes::ObjectParts)
        .object_attributes(ObjectAttributes::Etag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attrs.object_parts().and_then(|p| p.total_parts_count()),
        Some(3)
    );
    assert_eq!(attrs.e_tag(), Some(want_etag.trim_matches('"')));

    // The upload is gone once complete.
    let list = s3.list_multipart_uploads().bucket(&b).send().await.unwrap();
    assert!(list.uploads().is_empty());
    assert_sdk_err(
        s3.list_parts()
            .bucket(&b)
            .key("big/object.bin")
            .upload_id(&id)
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
}

#[tokio::test]
async fn complete_with_a_subset_of_parts_and_overwritten_part() {
    let (_store, s3, b) = TestStore::with_bucket("subset").await;
    let id = &start_upload(&s3, &b, "k").await;
    let p1 = random_bytes(5 * MIB, 23);
    let p2 = random_bytes(100, 24);
    let p3 = random_bytes(200, 25);
    let mut parts = upload_parts(&s3, &b, "k", id, &[&p1, &p2, &p3]).await;
    // Re-upload part 1: the last upload wins.
    let p1b = random_bytes(5 * MIB, 26);
    let out = s3
        .upload_part()
        .bucket(&b)
        .key("k")
        .upload_id(id)
        .part_number(1)
        .body(body(p1b.clone()))
        .send()
        .await
        .unwrap();
    parts[0] = CompletedPart::builder()
        .part_number(1)
        .e_tag(out.e_tag().unwrap())
        .build();
    // Complete with parts 1 and 3 only (numbers need not be consecutive).
    let done = s3
        .complete_multipart_upload()
        .bucket(&b)
        .key("k")
        .upload_id(id)
        .multipart_upload(completed(vec![parts[0].clone(), parts[2].clone()]))
        .send()
        .await
        .unwrap();
    assert_eq!(done.e_tag(), Some(multipart_etag(&[&p1b, &p3]).as_str()));
    let got = object_bytes(&s3, &b, "k").await;
    assert!(got == [p1b.as_slice(), &p3].concat());
}

#[tokio::test]
async fn abort_multipart_upload() {
    let (_store, s3, b) = TestStore::with_bucket("abort").await;
    let id = &start_upload(&s3, &b, "k").await;
    let parts = upload_parts(&s3, &b, "k", id, &[b"part one"]).await;
    s3.abort_multipart_upload()
        .bucket(&b)
        .key("k")
        .upload_id(id)
        .send()
        .await
        .expect("AbortMultipartUpload");

    assert!(
        s3.list_multipart_uploads()
            .bucket(&b)
            .send()
            .await
            .unwrap()
            .uploads()
            .is_empty()
    );
    assert_sdk_err(
        s3.upload_part()
            .bucket(&b)
            .key("k")
            .upload_id(id)
            .part_number(2)
            .body(body("late"))
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    assert_sdk_err(
        s3.complete_multipart_upload()
            .bucket(&b)
            .key("k")
            .upload_id(id)
            .multipart_upload(completed(parts))
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    assert_sdk_err(
        s3.head_object().bucket(&b).key("k").send().await,
        404,
        "NotFound",
    );
    assert_sdk_err(
        s3.abort_multipart_upload()
            .bucket(&b)
            .key("k")
            .upload_id("no-such-upload-id")
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
    // Now the bucket is empty and deletable.
    s3.delete_bucket()
        .bucket(&b)
        .send()
        .await
        .expect("delete bucket after abort");
}

#[tokio::test]
async fn list_multipart_uploads_with_prefix_and_several_uploads() {
    let (_store, s3, b) = TestStore::with_bucket("uploads").await;
    let mut ids = Vec::new();
    for k in ["logs/a", "logs/b", "logs/b", "other"] {
        let up = s3
            .create_multipart_upload()
            .bucket(&b)
            .key(k)
            .send()
            .await
            .unwrap();
        ids.push((k, up.upload_id().unwrap().to_string()));
    }
    let all = s3.list_multipart_uploads().bucket(&b).send().await.unwrap();
    assert_eq!(
        all.uploads().len(),
        4,
        "two uploads for one key are distinct"
    );
    let keys: Vec<_> = all.uploads().iter().map(|u| u.key().unwrap()).collect();
    assert_eq!(
        keys,
        ["logs/a", "logs/b", "logs/b", "other"],
        "sorted by key"
    );
    assert!(all.uploads().iter().all(|u| u.initiated().is_some()));
    let logs = s3
        .list_multipart_uploads()
        .bucket(&b)
        .prefix("logs/")
        .send()
        .await
        .unwrap();
    assert_eq!(logs.uploads().len(), 3);
    let grouped = s3
        .list_multipart_uploads()
        .bucket(&b)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        grouped
            .common_prefixes()
            .iter()
            .map(|p| p.prefix().unwrap())
            .collect::<Vec<_>>(),
        ["logs/"]
    );
    assert_eq!(grouped.uploads().len(), 1);
}

#[tokio::test]
async fn upload_part_copy_with_ranges() {
    let (_store, s3, b) = TestStore::with_bucket("partcopy").await;
    let src = random_bytes(10 * MIB + 300, 27);
    put_bytes(&s3, &b, "source", src.clone()).await;
    let split = 5 * MIB;

    let id = &start_upload(&s3, &b, "dest").await;
    let c1 = s3
        .upload_part_copy()
        .bucket(&b)
        .key("dest")
        .upload_id(id)
        .part_number(1)
        .copy_source(format!("{b}/source"))
        .copy_source_range(format!("bytes=0-{}", split - 1))
        .send()
        .await
        .expect("UploadPartCopy range 1");
    let e1 = c1
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .expect("CopyPartResult ETag")
        .to_string();
    assert_eq!(
        e1,
        etag_of(&src[..split]),
        "copied part ETag is the MD5 of the range"
    );
    let c2 = s3
        .upload_part_copy()
        .bucket(&b)
        .key("dest")
        .upload_id(id)
        .part_number(2)
        .copy_source(format!("{b}/source"))
        .copy_source_range(format!("bytes={split}-{}", src.len() - 1))
        .send()
        .await
        .expect("UploadPartCopy range 2");
    let e2 = c2
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .unwrap()
        .to_string();
    // A third part copied whole (no range) from a small object.
    put_bytes(&s3, &b, "tail", "TAIL").await;
    let c3 = s3
        .upload_part_copy()
        .bucket(&b)
        .key("dest")
        .upload_id(id)
        .part_number(3)
        .copy_source(format!("{b}/tail"))
        .send()
        .await
        .unwrap();
    let e3 = c3
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .unwrap()
        .to_string();

    let done = s3
        .complete_multipart_upload()
        .bucket(&b)
        .key("dest")
        .upload_id(id)
        .multipart_upload(completed(vec![
            CompletedPart::builder().part_number(1).e_tag(e1).build(),
            CompletedPart::builder().part_number(2).e_tag(e2).build(),
            CompletedPart::builder().part_number(3).e_tag(e3).build(),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        done.e_tag(),
        Some(multipart_etag(&[&src[..split], &src[split..], b"TAIL"]).as_str())
    );
    let got = object_bytes(&s3, &b, "dest").await;
    assert!(
        got == [src.as_slice(), b"TAIL"].concat(),
        "UploadPartCopy bytes"
    );

    // A range outside the source is refused.
    let r = s3
        .upload_part_copy()
        .bucket(&b)
        .key("dest2")
        .upload_id(
            s3.create_multipart_upload()
                .bucket(&b)
                .key("dest2")
                .send()
                .await
                .unwrap()
                .upload_id()
                .unwrap(),
        )
        .part_number(1)
        .copy_source(format!("{b}/tail"))
        .copy_source_range("bytes=0-100")
        .send()
        .await;
    // Past the source's end: unsatisfiable, as AWS answers.
    assert_sdk_err(r, 416, "InvalidRange");
}

#[tokio::test]
async fn complete_rejects_bad_part_lists() {
    let (store, s3, b) = TestStore::with_bucket("badparts").await;
    let id = &start_upload(&s3, &b, "k").await;
    let p1 = random_bytes(5 * MIB, 28);
    let p2 = random_bytes(10, 29);
    let parts = upload_parts(&s3, &b, "k", id, &[&p1, &p2]).await;

    let complete = |parts: Vec<CompletedPart>| {
        s3.complete_multipart_upload()
            .bucket(&b)
            .key("k")
            .upload_id(id)
            .multipart_upload(completed(parts))
            .send()
    };

    // Wrong ETag for an uploaded part.
    let wrong = CompletedPart::builder()
        .part_number(1)
        .e_tag("\"00000000000000000000000000000000\"")
        .build();
    assert_sdk_err(
        complete(vec![wrong, parts[1].clone()]).await,
        400,
        "InvalidPart",
    );
    // A part that was never uploaded.
    let ghost = CompletedPart::builder()
        .part_number(7)
        .e_tag(etag_of(b"ghost"))
        .build();
    assert_sdk_err(
        complete(vec![parts[0].clone(), ghost]).await,
        400,
        "InvalidPart",
    );
    // Out of order.
    assert_sdk_err(
        complete(vec![parts[1].clone(), parts[0].clone()]).await,
        400,
        "InvalidPartOrder",
    );
    // Empty list.
    let r = RawRequest::new("POST", &format!("/{b}/k?uploadId={}", enc_query(id)))
        .body("<CompleteMultipartUpload></CompleteMultipartUpload>")
        .sign(&store)
        .send(&store)
        .await;
    r.assert_error(400, "MalformedXML");
    // Malformed XML.
    let r = RawRequest::new("POST", &format!("/{b}/k?uploadId={}", enc_query(id)))
        .body("<CompleteMultipartUpload><Part><PartNumber>1</Part>")
        .sign(&store)
        .send(&store)
        .await;
    r.assert_error(400, "MalformedXML");

    // None of that completed anything; the upload is still usable.
    assert_sdk_err(
        s3.head_object().bucket(&b).key("k").send().await,
        404,
        "NotFound",
    );
    complete(parts)
        .await
        .expect("the good list still completes");
}

#[tokio::test]
async fn small_non_last_part_is_entity_too_small() {
    let (_store, s3, b) = TestStore::with_bucket("toosmall").await;
    let id = &start_upload(&s3, &b, "k").await;
    let small = random_bytes(1024, 30);
    let last = random_bytes(10, 31);
    let parts = upload_parts(&s3, &b, "k", id, &[&small, &last]).await;
    assert_sdk_err(
        s3.complete_multipart_upload()
            .bucket(&b)
            .key("k")
            .upload_id(id)
            .multipart_upload(completed(parts))
            .send()
            .await,
        400,
        "EntityTooSmall",
    );
    assert_sdk_err(
        s3.head_object().bucket(&b).key("k").send().await,
        404,
        "NotFound",
    );

    // Just under 5 MiB is still too small; exactly 5 MiB is fine.
    let id = &start_upload(&s3, &b, "edge").await;
    let under = random_bytes(5 * MIB - 1, 32);
    let parts = upload_parts(&s3, &b, "edge", id, &[&under, &last]).await;
    assert_sdk_err(
        s3.complete_multipart_upload()
            .bucket(&b)
            .key("edge")
            .upload_id(id)
            .multipart_upload(completed(parts))
            .send()
            .await,
        400,
        "EntityTooSmall",
    );
    // A single small part is the last part: fine.
    let id = &start_upload(&s3, &b, "one").await;
    let parts = upload_parts(&s3, &b, "one", id, &[&small]).await;
    s3.complete_multipart_upload()
        .bucket(&b)
        .key("one")
        .upload_id(id)
        .multipart_upload(completed(parts))
        .send()
        .await
        .expect("one small part");
}

#[tokio::test]
async fn s3cmd_style_complete_without_xmlns_and_unquoted_etags() {
    let (store, s3, b) = TestStore::with_bucket("s3cmd").await;
    let id = &start_upload(&s3, &b, "k").await;
    let p1 = random_bytes(5 * MIB, 33);
    let p2 = b"end".to_vec();
    upload_parts(&s3, &b, "k", id, &[&p1, &p2]).await;
    let xml = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part><Part><PartNumber>2</PartNumber><ETag>{}</ETag></Part></CompleteMultipartUpload>",
        hash::md5_hex(&p1),
        hash::md5_hex(&p2)
    );
    let r = RawRequest::new("POST", &format!("/{b}/k?uploadId={}", enc_query(id)))
        .body(xml)
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.xml("ETag").as_deref(),
        Some(multipart_etag(&[&p1, &p2]).as_str())
    );
    let h = s3.head_object().bucket(&b).key("k").send().await.unwrap();
    assert_eq!(h.content_length(), Some((p1.len() + 3) as i64));
}

#[tokio::test]
async fn part_number_limits() {
    let (store, s3, b) = TestStore::with_bucket("partlimits").await;
    let id = &start_upload(&s3, &b, "k").await;
    for n in [0, 10001] {
        let r = RawRequest::new(
            "PUT",
            &format!("/{b}/k?partNumber={n}&uploadId={}", enc_query(id)),
        )
        .body("x")
        .sign(&store)
        .send(&store)
        .await;
        r.assert_error(400, "InvalidArgument");
    }
    s3.upload_part()
        .bucket(&b)
        .key("k")
        .upload_id(id)
        .part_number(10000)
        .body(body("x"))
        .send()
        .await
        .expect("part 10000 is allowed");
    assert_sdk_err(
        s3.upload_part()
            .bucket(&b)
            .key("k")
            .upload_id("bogus-upload")
            .part_number(1)
            .body(body("x"))
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
}

#[tokio::test]
async fn stale_multipart_uploads_are_cleaned_up() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let opts = StoreOptions::default()
        .data_dir(&data)
        .config("[store]\nstale_upload_age_secs = 1\n");
    let mut store = TestStore::start_with(opts.clone());
    let s3 = store.client();
    let b = store.bucket(&s3, "stale").await;
    let up = s3
        .create_multipart_upload()
        .bucket(&b)
        .key("old")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    s3.upload_part()
        .bucket(&b)
        .key("old")
        .upload_id(&id)
        .part_number(1)
        .body(body(random_bytes(100_000, 34)))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Restart (the sweep runs at start-up at least; it may also run periodically).
    store.kill();
    let store = TestStore::start_with(opts);
    let s3 = store.client();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let list = s3.list_multipart_uploads().bucket(&b).send().await.unwrap();
        if list.uploads().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "an upload idle past stale_upload_age_secs was never cleaned up"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_sdk_err(
        s3.upload_part()
            .bucket(&b)
            .key("old")
            .upload_id(&id)
            .part_number(2)
            .body(body("x"))
            .send()
            .await,
        404,
        "NoSuchUpload",
    );
}
