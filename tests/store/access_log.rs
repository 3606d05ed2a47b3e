//! Bug 10 of issue 10, on the store: the access line names the client (the TCP peer, or
//! `X-Forwarded-For` when the peer is a configured trusted proxy), the user agent, the time to
//! the response head (`ms_head`) and to the last byte (`ms`); stderr carries no colour codes
//! when it is not a terminal. (The assertions are in tests/common/logs.rs, shared with the
//! edge's.)

use crate::common::logs::{self, ACCESS_LOG};
use crate::common::*;

fn logged_store() -> TestStore {
    TestStore::start_with(
        StoreOptions::default()
            .env(ACCESS_LOG.0, ACCESS_LOG.1)
            .config("[store]\ntrusted_proxies = [\"127.0.0.1/32\"]\n"),
    )
}

#[tokio::test]
async fn the_access_line_names_the_client_through_trusted_proxies_only() {
    logs::assert_client_fields(&logged_store()).await;
}

#[tokio::test]
async fn the_access_line_times_the_last_byte_of_a_slow_read() {
    let store = logged_store();
    let s3 = store.client();
    let bucket = store.bucket(&s3, "slowread").await;
    put_bytes(&s3, &bucket, "big", random_bytes(24 * MIB, 10)).await;
    logs::assert_slow_read_timed(&store, &bucket, "big", 24 * MIB).await;
}
