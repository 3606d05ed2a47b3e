//! What an edge's own key stands for, once clients' keys are known at the edge too. Before:
//! an edge whose key was deleted at the store kept deciding for its clients on the last rights
//! the store had published (a key deleted after it still read cached objects there, for as
//! long as the edge ran, and so did the deleted edge key itself); and any client key the edge knew, even one with no right at all,
//! could purge the edge's cache through `POST /_outpost/invalidations`, which is the edge
//! key's to call.

use std::time::{Duration, Instant};

use super::edge_keys::{KeyedEdge, is_hit};
use crate::common::keys::key_ok;
use crate::common::*;

#[tokio::test]
async fn an_edge_whose_key_is_deleted_no_longer_serves_keys_deleted_after_it() {
    let (pair, root, b) = KeyedEdge::with_bucket("ek-gone").await;
    put_bytes(&root, &b, "a.txt", b"cached".to_vec()).await;
    let reader = pair.key("reader", &b, &["--read"]);
    pair.synced(&b).await;
    let path = format!("/{b}/a.txt");
    assert_eq!(pair.get(&path, Some(&reader)).await.status, 200);
    assert!(is_hit(&pair.get(&path, Some(&reader)).await));

    key_ok(&pair.store, &["delete", "edge"]);
    // The edge's next poll is refused (its log says so): from then on it learns nothing.
    let started = Instant::now();
    while !pair.edge.stderr().contains("refused the edge key's poll") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the edge's poll was never refused:\n{}",
            pair.edge.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    key_ok(&pair.store, &["delete", "reader"]);
    let started = Instant::now();
    loop {
        let r = pair.get(&path, Some(&reader)).await;
        if r.status == 403 {
            // Unknown, as at the store; and nothing came from the cache.
            r.assert_error(403, "InvalidAccessKeyId");
            assert_eq!(r.header("x-cache"), None, "{:?}", r.headers);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a deleted key still reads the cached object at an edge whose key is deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nor does the deleted edge key itself read what its edge has cached.
    let r = pair.get(&path, Some(&pair.edge_key)).await;
    r.assert_error(403, "InvalidAccessKeyId");
    assert_eq!(r.header("x-cache"), None, "{:?}", r.headers);
}

#[tokio::test]
async fn only_the_edges_own_key_invalidates_its_cache() {
    let (pair, root, b) = KeyedEdge::with_bucket("ek-purge").await;
    put_bytes(&root, &b, "a.txt", b"cached".to_vec()).await;
    let owner = pair.key("owner", &b, &["--read", "--write", "--owner"]);
    let stranger = pair.key("stranger", &b, &[]);
    pair.synced(&b).await;
    let path = format!("/{b}/a.txt");
    assert_eq!(pair.get(&path, Some(&owner)).await.status, 200);
    assert!(is_hit(&pair.get(&path, Some(&owner)).await));

    let invalidate = |key: &(String, String)| {
        let body = format!(r#"{{"paths":["/{b}/*"]}}"#);
        let opts = SignOpts::default().keys(&key.0, &key.1);
        RawRequest::new("POST", "/_outpost/invalidations")
            .header("content-type", "application/json")
            .body(body)
            .sign_with(&pair.edge, &opts)
            .0
    };
    for key in [&stranger, &owner] {
        invalidate(key)
            .send(&pair.edge)
            .await
            .assert_error(403, "AccessDenied");
        assert!(
            is_hit(&pair.get(&path, Some(&owner)).await),
            "a client's key purged the cache"
        );
    }
    let r = invalidate(&pair.edge_key).send(&pair.edge).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let after = pair.get(&path, Some(&owner)).await;
    assert_eq!(after.status, 200);
    assert!(!is_hit(&after), "{:?}", after.headers);
}
