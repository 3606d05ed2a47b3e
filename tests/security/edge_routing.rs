//! Item 7: the edge routes exactly as the store does. A bucket segment that carries an encoded
//! `/` (or any byte a bucket name cannot hold) is InvalidBucketName at both, so the edge never
//! acts on a resource other than the one it routed and checked: `DELETE /relb%2fvictim` used
//! to reach the store as `DELETE /relb/victim`.

use crate::common::{EdgePair, RawRequest, TestStore, object_bytes, put_bytes, signed_get};

/// Every method against a bucket segment that is not a bucket name answers 400
/// InvalidBucketName, at `server`.
async fn refused_everywhere(server: &TestStore, target: &str) {
    for method in ["DELETE", "PUT", "GET", "HEAD", "POST"] {
        let mut request = RawRequest::new(method, target);
        if method == "PUT" || method == "POST" {
            request = request.body("overwritten");
        }
        let r = request.sign(server).send(server).await;
        if method == "HEAD" {
            assert_eq!(r.status, 400, "HEAD {target}");
        } else {
            r.assert_error(400, "InvalidBucketName");
        }
    }
}

#[tokio::test]
async fn an_encoded_slash_in_the_bucket_reaches_no_object_at_store_or_edge() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "relb").await;
    put_bytes(&s3, &b, "victim", "original").await;
    // The edge holds a copy.
    assert!(
        signed_get(&pair.edge, &b, "victim")
            .await
            .1
            .starts_with("Miss")
    );
    assert!(
        signed_get(&pair.edge, &b, "victim")
            .await
            .1
            .starts_with("Hit")
    );

    for server in [&pair.edge, &pair.store] {
        for slash in ["%2f", "%2F"] {
            refused_everywhere(server, &format!("/{b}{slash}victim")).await;
            refused_everywhere(server, &format!("/{b}{slash}victim/more")).await;
        }
    }

    assert_eq!(object_bytes(&s3, &b, "victim").await, b"original");
    let (body, x_cache, _) = signed_get(&pair.edge, &b, "victim").await;
    assert_eq!(body, b"original", "the edge serves what the store holds");
    assert!(x_cache.starts_with("Hit"), "{x_cache}");
    // Nothing was written or deleted at the store by any of those requests.
    let listed = s3.list_objects_v2().bucket(&b).send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["victim"]);
}

#[tokio::test]
async fn bytes_no_bucket_name_holds_are_invalid_bucket_names_at_store_and_edge() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "nulb").await;
    put_bytes(&s3, &b, "k", "kept").await;
    for server in [&pair.store, &pair.edge] {
        for target in [
            format!("/{b}%00/k"),
            format!("/%00{b}"),
            format!("/{b}%20/k"),
            format!("/{b}%C3%A9/k"),
            format!("/{b}%5c/k"),
        ] {
            refused_everywhere(server, &target).await;
        }
    }
    assert_eq!(object_bytes(&s3, &b, "k").await, b"kept");
}

#[tokio::test]
async fn objects_deleted_in_bulk_through_the_edge_are_not_served_from_its_cache() {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let edge = crate::common::client_for(
        &pair.edge.url,
        crate::common::ACCESS_KEY,
        crate::common::SECRET_KEY,
    );
    let b = pair.store.bucket(&s3, "bulk").await;
    for quiet in [false, true] {
        let keys = [format!("gone-{quiet}"), format!("also/gone-{quiet}")];
        for key in &keys {
            put_bytes(&s3, &b, key, "cached").await;
            signed_get(&pair.edge, &b, key).await;
            assert!(signed_get(&pair.edge, &b, key).await.1.starts_with("Hit"));
        }
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build().unwrap())
            .collect();
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(quiet)
            .build()
            .unwrap();
        let out = edge
            .delete_objects()
            .bucket(&b)
            .delete(delete)
            .send()
            .await
            .expect("DeleteObjects through the edge");
        assert!(out.errors().is_empty(), "{out:?}");
        for key in &keys {
            let r = RawRequest::new("GET", &format!("/{b}/{key}"))
                .sign(&pair.edge)
                .send(&pair.edge)
                .await;
            r.assert_error(404, "NoSuchKey");
        }
    }
}
