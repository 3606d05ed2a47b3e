//! `/_outpost/ready` (issue 10, bug 6): liveness stays `/_outpost/health`; readiness says
//! whether any origin takes connections, naming origins by index, never by address.

use crate::common::*;

async fn ready(edge: &TestStore) -> (u16, serde_json::Value, String) {
    let r = RawRequest::new("GET", "/_outpost/ready").send(edge).await;
    let json = serde_json::from_slice(&r.body).expect("ready answers JSON");
    (r.status, json, r.text())
}

#[tokio::test]
async fn ready_follows_the_origins_and_health_stays_liveness() {
    let primary = TestStore::start();
    let mut failover = TestStore::start();
    let edge = TestStore::start_edge(&[&primary, &failover], StoreOptions::default());

    let (status, json, _) = ready(&edge).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["ready"], true);
    assert_eq!(json["origins"][0]["index"], 0);
    assert_eq!(json["origins"][1]["reachable"], true);

    failover.kill();
    let (status, json, _) = ready(&edge).await;
    assert_eq!(status, 200, "one origin left is enough: {json}");
    assert_eq!(json["origins"][0]["reachable"], true);
    assert_eq!(json["origins"][1]["reachable"], false);
    assert_eq!(json["origins"][1]["error"], "connection-refused");

    let mut primary = primary;
    primary.kill();
    let (status, json, text) = ready(&edge).await;
    assert_eq!(status, 503, "no origin reachable: {json}");
    assert_eq!(json["ready"], false);
    for origin in [&primary, &failover] {
        assert!(!text.contains(&origin.addr), "no address in {text}");
    }
    assert!(!text.contains("http://"), "{text}");

    let health = RawRequest::new("GET", "/_outpost/health").send(&edge).await;
    assert_eq!(health.status, 200, "the edge itself is alive");
}
