//! The store's `/_outpost/ready` (issue 10, bug 6, store half): 200 with every check passing,
//! 503 naming the check that fails when the data directory is full or gone, and
//! 200 again once the operator fixes it, without a restart. `/_outpost/health` keeps its
//! plain-text answer.

use std::time::{Duration, Instant};

use super::common::{RawRequest, StoreOptions, TestStore};
use super::disk_full::SmallFs;

async fn ready(store: &TestStore) -> (u16, serde_json::Value) {
    let r = RawRequest::new("GET", "/_outpost/ready").send(store).await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    let json = serde_json::from_slice(&r.body).expect("ready answers JSON");
    (r.status, json)
}

/// Polls `/_outpost/ready` until it answers `status` (generous deadline for a loaded machine).
async fn await_ready(store: &TestStore, status: u16) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (got, json) = ready(store).await;
        if got == status {
            return json;
        }
        assert!(
            Instant::now() < deadline,
            "ready stayed {got} ({json}), expected {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn check(json: &serde_json::Value, name: &str) -> bool {
    json["checks"][name]["ok"]
        .as_bool()
        .unwrap_or_else(|| panic!("no check {name} in {json}"))
}

/// The data directory check failed, saying `why`, without naming where the data lives.
#[track_caller]
fn assert_data_dir_fails(json: &serde_json::Value, why: &str, internal: &std::path::Path) {
    assert!(!check(json, "data_dir_writable"), "{json}");
    let reason = json["checks"]["data_dir_writable"]["reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains(why), "{reason}");
    let internal = internal.to_string_lossy();
    assert!(!reason.contains(&*internal), "no internal path: {reason}");
}

#[tokio::test]
async fn a_fresh_store_is_ready_and_health_is_unchanged() {
    let store = TestStore::start();
    let (status, json) = ready(&store).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["ready"], true);
    assert!(check(&json, "index_open") && check(&json, "data_dir_writable"));
    // Anonymous, like health: a load balancer probes without keys.
    let health = RawRequest::new("GET", "/_outpost/health")
        .send(&store)
        .await;
    assert_eq!((health.status, health.text()), (200, "ok\n".to_owned()));
}

#[tokio::test]
async fn a_full_or_missing_data_dir_is_not_ready_until_fixed() {
    let Some(fs) = SmallFs::mount(16, "a_full_or_missing_data_dir_is_not_ready") else {
        return;
    };
    let data = fs.path().join("data");
    let store = TestStore::start_with(StoreOptions::default().data_dir(&data));
    await_ready(&store, 200).await;

    let filler = fs.fill();
    let json = await_ready(&store, 503).await;
    assert_eq!(json["ready"], false);
    assert!(
        check(&json, "index_open"),
        "the index itself is fine: {json}"
    );
    assert_data_dir_fails(&json, "free", fs.path());
    std::fs::remove_file(filler).unwrap();
    await_ready(&store, 200).await;

    // Room, but no new file can be made there: the data directory went away under the
    // store (an unmounted volume, an operator's `mv`). Back in place, the store is ready again.
    let moved = fs.path().join("moved");
    std::fs::rename(&data, &moved).unwrap();
    let json = await_ready(&store, 503).await;
    assert_data_dir_fails(&json, "no new file", fs.path());
    std::fs::rename(&moved, &data).unwrap();
    await_ready(&store, 200).await;
}
