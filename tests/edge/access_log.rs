//! Bug 10 of issue 10, at the edge: the access line names the client (the TCP peer, or
//! `X-Forwarded-For` when the peer is a configured trusted proxy, e.g. a load balancer), the
//! user agent, the time to the response head (`ms_head`) and to the last byte (`ms`); stderr
//! carries no colour codes when it is not a terminal. (The assertions are in
//! tests/common/logs.rs, shared with the store's.)

use crate::common::logs::{self, ACCESS_LOG};
use crate::common::*;

/// 127.0.0.0/31 trusts 127.0.0.1 (and 127.0.0.0), not 127.0.0.2.
fn logged_edge(store: &TestStore) -> TestStore {
    TestStore::start_edge(
        &[store],
        StoreOptions::default()
            .env(ACCESS_LOG.0, ACCESS_LOG.1)
            .config("[edge]\ntrusted_proxies = [\"127.0.0.0/31\"]\n"),
    )
}

#[tokio::test]
async fn the_edge_access_line_names_the_client_through_trusted_proxies_only() {
    let store = TestStore::start();
    logs::assert_client_fields(&logged_edge(&store)).await;
}

/// A Miss that streams to a slow reader while the cache fills.
#[tokio::test]
async fn the_edge_access_line_times_the_last_byte_of_a_slow_read() {
    let store = TestStore::start();
    let edge = logged_edge(&store);
    let s3 = store.client();
    let bucket = store.bucket(&s3, "slowread").await;
    put_bytes(&s3, &bucket, "big", random_bytes(24 * MIB, 11)).await;
    let line = logs::assert_slow_read_timed(&edge, &bucket, "big", 24 * MIB).await;
    assert_eq!(line["cache"], "Miss");
}
