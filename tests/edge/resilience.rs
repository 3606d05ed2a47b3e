//! When origins fail: stale copies instead of errors, failover to the next store.

use crate::common::*;

#[tokio::test]
async fn stale_if_error_serves_the_cached_copy_when_the_origin_is_gone() {
    let mut p = EdgePair::start();
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "stale").await;
    s3.put_object()
        .bucket(&b)
        .key("index.html")
        .cache_control("max-age=60")
        .body(body("still here"))
        .send()
        .await
        .unwrap();
    let edge = p.edge.client();
    assert_eq!(object_bytes(&edge, &b, "index.html").await, b"still here");

    p.store.kill();
    p.edge.advance_clock(120).await;
    let r = RawRequest::new("GET", &format!("/{b}/index.html"))
        .sign(&p.edge)
        .send(&p.edge)
        .await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"still here"[..]),
        "{}",
        r.text()
    );
    assert_eq!(r.header("x-cache"), Some("Stale from outpost"));

    // Past the grace (a day by default) nothing usable is left.
    p.edge.advance_clock(2 * 86_400).await;
    let r = RawRequest::new("GET", &format!("/{b}/index.html"))
        .sign(&p.edge)
        .send(&p.edge)
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    // What was never cached fails clearly too.
    let r = RawRequest::new("GET", &format!("/{b}/other"))
        .sign(&p.edge)
        .send(&p.edge)
        .await;
    r.assert_error(503, "ServiceUnavailable");
}

#[tokio::test]
async fn reads_fail_over_to_the_next_store() {
    let mut primary = TestStore::start();
    let secondary = TestStore::start();
    let b = unique_bucket("failover");
    for store in [&primary, &secondary] {
        let s3 = store.client();
        s3.create_bucket().bucket(&b).send().await.unwrap();
        put_bytes(&s3, &b, "k", "replica").await;
    }
    let edge = TestStore::start_edge(&[&primary, &secondary], StoreOptions::default());
    let client = edge.client();
    assert_eq!(object_bytes(&client, &b, "k").await, b"replica");
    assert_eq!(
        primary.origin_gets("200").await,
        1.0,
        "the primary serves while it is up"
    );

    primary.kill();
    for key in ["k2", "k3"] {
        secondary
            .client()
            .put_object()
            .bucket(&b)
            .key(key)
            .body(body(key))
            .send()
            .await
            .unwrap();
        assert_eq!(object_bytes(&client, &b, key).await, key.as_bytes());
    }
    assert_eq!(secondary.origin_gets("200").await, 2.0);
}
