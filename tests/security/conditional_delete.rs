//! Hole 13: conditional deletes were ignored. DeleteObject with `If-Match` (and AWS's
//! `x-amz-if-match-last-modified-time` / `x-amz-if-match-size`) deleted the object whatever its
//! ETag, so a client that asked "delete only if unchanged" lost a newer object. Now the
//! conditions are checked in the deleting transaction (412 PreconditionFailed, nothing
//! deleted; 404 NoSuchKey for If-Match on a missing key), per object in DeleteObjects too, at
//! the store and through the edge; read-only preconditions are refused, not ignored.

use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use crate::common::*;

async fn exists(s3: &aws_sdk_s3::Client, b: &str, key: &str) -> bool {
    s3.head_object().bucket(b).key(key).send().await.is_ok()
}

#[tokio::test]
async fn delete_object_honours_its_conditions_at_store_and_edge() {
    let pair = EdgePair::start();
    let direct = pair.store.client();
    let b = pair.store.bucket(&direct, "cdel").await;
    for s3 in [direct.clone(), pair.edge.client()] {
        let v1 = put_bytes(&s3, &b, "doc", b"version 1".to_vec()).await;
        let v1_etag = v1.e_tag().unwrap().to_string();
        // Someone else replaces the object; our delete "if still v1" must fail.
        put_bytes(&direct, &b, "doc", b"version 2 from someone else".to_vec()).await;
        let r = s3
            .delete_object()
            .bucket(&b)
            .key("doc")
            .if_match(&v1_etag)
            .send()
            .await;
        assert_sdk_err(r, 412, "PreconditionFailed");
        assert_eq!(
            object_bytes(&direct, &b, "doc").await,
            b"version 2 from someone else",
            "the newer object survives"
        );
        let head = direct
            .head_object()
            .bucket(&b)
            .key("doc")
            .send()
            .await
            .unwrap();
        let (etag, size) = (
            head.e_tag().unwrap().to_string(),
            head.content_length().unwrap(),
        );
        let modified = head.last_modified().unwrap().secs();
        // Size and Last-Modified conditions.
        let r = s3
            .delete_object()
            .bucket(&b)
            .key("doc")
            .if_match_size(size + 1)
            .send()
            .await;
        assert_sdk_err(r, 412, "PreconditionFailed");
        let r = s3
            .delete_object()
            .bucket(&b)
            .key("doc")
            .if_match_last_modified_time(DateTime::from_secs(modified - 3600))
            .send()
            .await;
        assert_sdk_err(r, 412, "PreconditionFailed");
        assert!(exists(&direct, &b, "doc").await);
        // All three matching: deleted.
        s3.delete_object()
            .bucket(&b)
            .key("doc")
            .if_match(&etag)
            .if_match_size(size)
            .if_match_last_modified_time(DateTime::from_secs(modified))
            .send()
            .await
            .expect("conditions hold: deleted");
        assert!(!exists(&direct, &b, "doc").await);
        // If-Match on a missing key is NoSuchKey; `*` deletes only what exists.
        let r = s3
            .delete_object()
            .bucket(&b)
            .key("doc")
            .if_match("*")
            .send()
            .await;
        assert_sdk_err(r, 404, "NoSuchKey");
        put_bytes(&direct, &b, "doc", b"again".to_vec()).await;
        s3.delete_object()
            .bucket(&b)
            .key("doc")
            .if_match("*")
            .send()
            .await
            .unwrap();
        assert!(!exists(&direct, &b, "doc").await);
        // Unconditional deletes of missing keys still succeed.
        s3.delete_object()
            .bucket(&b)
            .key("doc")
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn read_preconditions_on_delete_are_refused_not_ignored() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "cdelr").await;
    put_bytes(&s3, &b, "k", b"x".to_vec()).await;
    for server in [&pair.store, &pair.edge] {
        for (name, value) in [
            ("if-none-match", "\"abc\""),
            ("if-unmodified-since", "Mon, 01 Jan 2024 00:00:00 GMT"),
            ("if-modified-since", "Mon, 01 Jan 2024 00:00:00 GMT"),
        ] {
            let r = RawRequest::new("DELETE", &format!("/{b}/k"))
                .header(name, value)
                .sign(server)
                .send(server)
                .await;
            r.assert_error(501, "NotImplemented");
            assert!(exists(&s3, &b, "k").await, "{name}: nothing deleted");
        }
        let r = RawRequest::new("DELETE", &format!("/{b}/k"))
            .header("x-amz-if-match-size", "lots")
            .sign(server)
            .send(server)
            .await;
        r.assert_error(400, "InvalidArgument");
        assert!(exists(&s3, &b, "k").await);
    }
}

#[tokio::test]
async fn delete_objects_checks_each_entry() {
    let pair = EdgePair::start();
    let direct = pair.store.client();
    let b = pair.store.bucket(&direct, "cdelm").await;
    for s3 in [direct.clone(), pair.edge.client()] {
        let keep = put_bytes(&direct, &b, "keep", b"keep".to_vec()).await;
        let gone = put_bytes(&direct, &b, "gone", b"gone".to_vec()).await;
        put_bytes(&direct, &b, "sized", b"12345".to_vec()).await;
        let id = |key: &str| ObjectIdentifier::builder().key(key);
        let delete = Delete::builder()
            .objects(
                id("keep")
                    .e_tag("\"0123456789abcdef0123456789abcdef\"")
                    .build()
                    .unwrap(),
            )
            .objects(id("gone").e_tag(gone.e_tag().unwrap()).build().unwrap())
            .objects(id("missing").e_tag("*").build().unwrap())
            .objects(id("sized").size(4).build().unwrap())
            .build()
            .unwrap();
        let out = s3
            .delete_objects()
            .bucket(&b)
            .delete(delete)
            .send()
            .await
            .unwrap();
        let deleted: Vec<_> = out.deleted().iter().filter_map(|d| d.key()).collect();
        assert_eq!(deleted, ["gone"]);
        let mut errors: Vec<_> = out
            .errors()
            .iter()
            .map(|e| (e.key().unwrap(), e.code().unwrap()))
            .collect();
        errors.sort();
        assert_eq!(
            errors,
            [
                ("keep", "PreconditionFailed"),
                ("missing", "NoSuchKey"),
                ("sized", "PreconditionFailed")
            ]
        );
        assert!(exists(&direct, &b, "keep").await && exists(&direct, &b, "sized").await);
        assert!(!exists(&direct, &b, "gone").await);
        // The right ETag deletes.
        let delete = Delete::builder()
            .objects(id("keep").e_tag(keep.e_tag().unwrap()).build().unwrap())
            .objects(id("sized").size(5).build().unwrap())
            .build()
            .unwrap();
        let out = s3
            .delete_objects()
            .bucket(&b)
            .delete(delete)
            .send()
            .await
            .unwrap();
        assert_eq!(out.deleted().len(), 2, "{:?}", out.errors());
        assert!(!exists(&direct, &b, "keep").await && !exists(&direct, &b, "sized").await);
    }
}

/// Concurrent deletes "if still this version": the check and the delete are one transaction,
/// so exactly one succeeds and the others find nothing left to match.
#[tokio::test]
async fn concurrent_conditional_deletes_delete_once() {
    let store = TestStore::start();
    let s3 = store.client();
    let b = store.bucket(&s3, "cdelc").await;
    for round in 0..3 {
        let etag = put_bytes(&s3, &b, "k", format!("v{round}"))
            .await
            .e_tag()
            .unwrap()
            .to_string();
        let deletes = (0..16).map(|_| {
            let (s3, b, etag) = (s3.clone(), b.clone(), etag.clone());
            tokio::spawn(async move {
                s3.delete_object()
                    .bucket(b)
                    .key("k")
                    .if_match(etag)
                    .send()
                    .await
            })
        });
        let mut deleted = 0;
        for handle in deletes.collect::<Vec<_>>() {
            match handle.await.unwrap() {
                Ok(_) => deleted += 1,
                failed => assert_sdk_err(failed, 404, "NoSuchKey"),
            }
        }
        assert_eq!(deleted, 1, "round {round}: one delete wins");
        assert!(!exists(&s3, &b, "k").await);
    }
}
