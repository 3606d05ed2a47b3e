//! Uncacheable answers are reported as `Bypass` with their reason (issue 10), not as Miss:
//! `X-Cache: Bypass from outpost`, the `outpost_edge_cache_bypasses_total{reason}` metric.

use crate::common::*;

#[tokio::test]
async fn uncacheable_answers_are_bypass_with_their_reason() {
    let store = TestStore::start();
    let edge = TestStore::start_edge(
        &[&store],
        StoreOptions::default().env("RUST_LOG", "warn,outpost::access=info"),
    );
    let p = EdgePair { store, edge };
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "bypass").await;
    for (key, cache_control) in [("a", "no-store"), ("b", "private, max-age=600")] {
        s3.put_object()
            .bucket(&b)
            .key(key)
            .cache_control(cache_control)
            .body(body(key.as_bytes().to_vec()))
            .send()
            .await
            .unwrap();
    }
    for key in ["a", "b", "a"] {
        let (data, x_cache, _) = signed_get(&p.edge, &b, key).await;
        assert_eq!(data, key.as_bytes());
        assert_eq!(x_cache, "Bypass from outpost", "{key}");
    }
    // An error answer the edge never stores (403 to an anonymous reader of a private bucket).
    let r = RawRequest::new("GET", &format!("/{b}/a"))
        .send(&p.edge)
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-cache"), Some("Bypass from outpost"));

    let bypasses = |reason: &'static str| {
        let edge = &p.edge;
        async move {
            edge.metric("outpost_edge_cache_bypasses_total", &[("reason", reason)])
                .await
        }
    };
    assert_eq!(bypasses("no-store").await, 2.0);
    assert_eq!(bypasses("private").await, 1.0);
    assert_eq!(bypasses("status").await, 1.0);
    let outcome = p
        .edge
        .metric(
            "outpost_edge_cache_requests_total",
            &[("outcome", "Bypass")],
        )
        .await;
    assert_eq!(outcome, 4.0);
    assert_eq!(
        p.edge
            .metric("outpost_edge_cache_requests_total", &[("outcome", "Miss")])
            .await,
        0.0,
        "nothing here was a miss"
    );
    // The access line is written as the body ends: poll for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !p.edge.stderr().lines().any(|l| {
        l.contains("outpost::access") && l.contains("cache_reason") && l.contains("no-store")
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "the access log says why:\n{}",
            p.edge.stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
