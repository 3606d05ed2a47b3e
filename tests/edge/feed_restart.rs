//! An edge that was away: killed (SIGKILL) and started again on the same cache dir, it keeps
//! its disk tier and catches up on the change feed from where it stood before it trusts what
//! it holds; garbage in its cache dir or in the feed is dropped, never served or applied.
//! Large objects (several 64 KiB slices) live in the disk tier; origin traffic is read from
//! the store's own metrics.

use std::time::{Duration, Instant};

use crate::common::faulty::FaultyOrigin;
use crate::common::feed::Feed;
use crate::common::*;
use crate::feed::{Cut, DEADLINE, cached, edge_for, edge_with, following, get, reaches, until};

/// Slices of 64 KiB (the least): the objects below are four of them.
const SLICES: &str = "slice_bytes = 65536\n";
const LARGE: usize = 200 * 1024;

/// The store's last sequence number, from the hello line of its feed.
async fn store_last_seq(store: &TestStore) -> u64 {
    let mut feed = Feed::open(store, "", None).await;
    let hello = feed.line(DEADLINE).await;
    hello["last"].as_u64().expect("hello has last")
}

/// Waits until `edge` has saved its place in the feed at `seq` or later (with its disk cache).
async fn saved(edge: &TestStore, seq: u64) {
    let never = format!("the edge never saved its place at {seq}");
    reaches(edge, "outpost_edge_feed_saved_seq", seq as f64, &never).await;
}

/// GetObject requests the store answered, whatever the status.
async fn origin_gets(store: &TestStore) -> f64 {
    let get = [("operation", "GetObject")];
    store.metric("outpost_s3_requests_total", &get).await
}

/// Waits until `edge` has `entries` large objects on disk, heads and slices (they are written
/// as the first reader is served, not before it is).
async fn on_disk(edge: &TestStore, entries: usize) {
    let files = |dir: &str| {
        std::fs::read_dir(edge.data_dir.join(dir))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let slices = entries * LARGE.div_ceil(64 * 1024);
    let started = Instant::now();
    while files("heads") < entries || files("slices") < slices {
        assert!(
            started.elapsed() < DEADLINE,
            "the edge never wrote its {entries} entries to disk"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGKILLs `edge` and starts another on its cache dir and port, in front of `origin`.
fn restart(edge: &mut TestStore, origin: &str, extra: &str) -> TestStore {
    edge.kill();
    let opts = StoreOptions::default()
        .data_dir(&edge.data_dir)
        .port(edge.port);
    edge_with(origin, extra, opts)
}

#[tokio::test]
async fn an_edge_killed_and_restarted_keeps_its_disk_cache_and_serves_nothing_that_changed() {
    let store = TestStore::start();
    let mut edge = edge_for(&store.url, SLICES);
    following(&edge).await;
    let s3 = store.client();
    let b = store.bucket(&s3, "restart").await;
    let data = |seed| random_bytes(LARGE, seed);
    for (n, k) in ["same", "changed", "deleted", "changed-before"]
        .iter()
        .enumerate()
    {
        put_bytes(&s3, &b, k, data(n as u64)).await;
        cached(&edge, &b, k, true, &data(n as u64)).await;
    }
    // A small object lives in memory: gone with the process, fetched again.
    put_bytes(&s3, &b, "small", "tiny").await;
    cached(&edge, &b, "small", true, b"tiny").await;
    on_disk(&edge, 4).await;
    // Changed while the edge ran, and not read since: the edge dropped it, on disk too.
    put_bytes(&s3, &b, "changed-before", data(8)).await;
    saved(&edge, store_last_seq(&store).await).await;

    edge.kill();
    put_bytes(&s3, &b, "changed", data(9)).await;
    let delete = s3.delete_object().bucket(&b).key("deleted");
    delete.send().await.unwrap();
    let edge = restart(&mut edge, &store.url, SLICES);

    let before = origin_gets(&store).await;
    let (status, body, cache) = get(&edge, &b, "same", true).await;
    assert_eq!(status, 200);
    assert!(body == data(0), "the bytes it held");
    assert_eq!(cache, "Hit from outpost", "kept across the restart");
    // Its head too: validators, age, ranges across slices.
    let ranged = RawRequest::new("GET", &format!("/{b}/same"))
        .header("range", "bytes=60000-140000")
        .sign(&edge)
        .send(&edge)
        .await;
    assert_eq!(ranged.status, 206);
    assert!(ranged.body == data(0)[60000..=140000], "the range's bytes");
    assert_eq!(ranged.header("etag"), Some(etag_of(&data(0)).as_str()));
    assert_eq!(ranged.header("x-cache"), Some("Hit from outpost"));
    assert!(ranged.header("age").is_some());
    assert_eq!(
        origin_gets(&store).await,
        before,
        "no origin request for an unchanged object, not even a revalidation"
    );
    let (status, body, cache) = get(&edge, &b, "changed", true).await;
    assert_eq!((status, cache.as_str()), (200, "Miss from outpost"));
    assert!(
        body == data(9),
        "changed while the edge was down: the new bytes"
    );
    let (status, _, _) = get(&edge, &b, "deleted", true).await;
    assert_eq!(status, 404, "deleted while the edge was down");
    let (_, body, cache) = get(&edge, &b, "changed-before", true).await;
    assert_eq!(cache, "Miss from outpost");
    assert!(body == data(8), "changed-before the edge went down");
    let small = get(&edge, &b, "small", true).await;
    assert_eq!(small, (200, b"tiny".to_vec(), "Miss from outpost".into()));
    let resyncs = edge.metric("outpost_edge_feed_resyncs_total", &[]).await;
    assert_eq!(
        resyncs, 0.0,
        "resumed where it stood: nothing to revalidate"
    );
}

#[tokio::test]
async fn torn_or_garbage_files_in_the_cache_dir_are_dropped_at_start_never_served() {
    let store = TestStore::start();
    // The feed off: restored entries keep their TTLs, nothing else decides.
    let extra = format!("{SLICES}feed = false\n");
    let mut edge = edge_for(&store.url, &extra);
    let s3 = store.client();
    let b = store.bucket(&s3, "torn").await;
    let keys = ["torn-slice", "damaged-slice", "garbage-head", "intact"];
    for (n, k) in keys.iter().enumerate() {
        put_bytes(&s3, &b, k, random_bytes(LARGE, n as u64)).await;
        cached(&edge, &b, k, true, &random_bytes(LARGE, n as u64)).await;
    }
    on_disk(&edge, keys.len()).await;
    edge.kill();

    // Each entry's head (heads/<version>) names its key; its slices start with the version.
    let dir = edge.data_dir.clone();
    let version_of = |key: &str| -> String {
        std::fs::read_dir(dir.join("heads"))
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| {
                let text = std::fs::read_to_string(e.path()).unwrap();
                text.contains(&format!("\\n{key}\\n"))
            })
            .unwrap_or_else(|| panic!("no head names {key}"))
            .file_name()
            .into_string()
            .unwrap()
    };
    let slice = |key: &str, index: u64| {
        let prefix = format!("{}-{index}-", version_of(key));
        std::fs::read_dir(dir.join("slices"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with(&prefix)
            })
            .unwrap_or_else(|| panic!("no slice {index} of {key}"))
    };
    // Cut short, as a write a crash interrupted would be.
    let torn = slice("torn-slice", 1);
    std::fs::write(&torn, &std::fs::read(&torn).unwrap()[..1000]).unwrap();
    // Whole length, other bytes: only its checksum tells.
    let damaged = slice("damaged-slice", 2);
    std::fs::write(&damaged, vec![0x5a; 64 * 1024]).unwrap();
    let head = dir.join("heads").join(version_of("garbage-head"));
    std::fs::write(
        &head,
        b"{\"key\":\"s3\\ntorn\\ngarbage-head\\n\",\"status\":2",
    )
    .unwrap();
    std::fs::write(
        dir.join("heads").join("0123456789abcdef"),
        b"\x00\xffnot json",
    )
    .unwrap();
    std::fs::write(dir.join("slices").join(".k3j4h5.tmp"), vec![1; 4096]).unwrap();
    std::fs::write(dir.join("slices").join("ffffffffffffffff-0-00000000"), b"x").unwrap();

    let edge = restart(&mut edge, &store.url, &extra);
    for (n, k) in keys.iter().enumerate() {
        let (status, body, cache) = get(&edge, &b, k, true).await;
        assert_eq!(status, 200, "{k}");
        assert!(
            body == random_bytes(LARGE, n as u64),
            "{k}: the object's bytes"
        );
        let want = match *k {
            "garbage-head" => "Miss from outpost",
            // The head was kept; the slice it lacks is fetched again.
            _ => "Hit from outpost",
        };
        assert_eq!(cache, want, "{k}");
    }
    for stray in [
        "slices/.k3j4h5.tmp",
        "slices/ffffffffffffffff-0-00000000",
        "heads/0123456789abcdef",
    ] {
        assert!(!dir.join(stray).exists(), "{stray} removed at start");
    }
}

#[tokio::test]
async fn an_edge_restarted_in_front_of_replaced_store_data_revalidates_what_it_holds() {
    let mut store = TestStore::start();
    let mut edge = edge_for(&store.url, SLICES);
    following(&edge).await;
    let b = store.bucket(&store.client(), "replaced").await;
    let (same, old) = (random_bytes(LARGE, 1), random_bytes(LARGE, 2));
    put_bytes(&store.client(), &b, "same", same.clone()).await;
    put_bytes(&store.client(), &b, "changed", old.clone()).await;
    cached(&edge, &b, "same", true, &same).await;
    cached(&edge, &b, "changed", true, &old).await;
    on_disk(&edge, 2).await;
    saved(&edge, store_last_seq(&store).await).await;
    edge.kill();

    // Other data behind the same address: a store id the edge never saw, numbers from 1.
    let port = store.port;
    store.kill();
    let store = TestStore::start_with(StoreOptions::default().port(port));
    let s3 = store.client();
    s3.create_bucket().bucket(&b).send().await.unwrap();
    put_bytes(&s3, &b, "same", same.clone()).await;
    put_bytes(&s3, &b, "changed", random_bytes(LARGE, 3)).await;
    let edge = restart(&mut edge, &store.url, SLICES);

    let (status, body, cache) = get(&edge, &b, "changed", true).await;
    assert_eq!(status, 200);
    assert!(
        body == random_bytes(LARGE, 3),
        "the new data's bytes, not the old"
    );
    assert_eq!(cache, "Miss from outpost");
    let (_, body, cache) = get(&edge, &b, "same", true).await;
    assert!(body == same);
    assert_eq!(
        cache, "RefreshHit from outpost",
        "revalidated (a 304 keeps the body), not flushed"
    );
    assert_eq!(
        edge.metric("outpost_edge_feed_resyncs_total", &[]).await,
        1.0
    );
}

#[tokio::test]
async fn an_edge_that_missed_events_still_revalidates_after_a_restart() {
    // The store keeps two events: a cut outlasts them.
    let mut cut = Cut::start_with("change_max_events = 2\n", SLICES).await;
    let s3 = cut.store.client();
    let b = cut.store.bucket(&s3, "away").await;
    put_bytes(&s3, &b, "changed", random_bytes(LARGE, 5)).await;
    cached(&cut.edge, &b, "changed", true, &random_bytes(LARGE, 5)).await;
    on_disk(&cut.edge, 1).await;
    cut.while_cut(async {
        put_bytes(&s3, &b, "changed", random_bytes(LARGE, 6)).await;
        for i in 0..3 {
            put_bytes(&s3, &b, &format!("other{i}"), "x").await;
        }
    })
    .await;
    let never = "the edge never learnt it missed events";
    reaches(&cut.edge, "outpost_edge_feed_resyncs_total", 2.0, never).await;
    // Marked, not yet revalidated, when the edge goes down.
    saved(&cut.edge, store_last_seq(&cut.store).await).await;
    let edge = restart(&mut cut.edge, &cut.proxy.url, SLICES);
    let (status, body, cache) = get(&edge, &b, "changed", true).await;
    assert_eq!((status, cache.as_str()), (200, "Miss from outpost"));
    assert!(
        body == random_bytes(LARGE, 6),
        "the mark outlived the restart"
    );
}

#[tokio::test]
async fn an_edge_restarted_while_the_store_is_down_revalidates_and_serves_within_ttl() {
    let mut store = TestStore::start();
    let mut edge = edge_for(&store.url, SLICES);
    following(&edge).await;
    let s3 = store.client();
    let b = store.bucket(&s3, "down").await;
    let data = random_bytes(LARGE, 4);
    put_bytes(&s3, &b, "k", data.clone()).await;
    cached(&edge, &b, "k", true, &data).await;
    on_disk(&edge, 1).await;
    saved(&edge, store_last_seq(&store).await).await;
    edge.kill();
    let (dir, port) = (store.data_dir.clone(), store.port);
    store.kill();

    // No feed to catch up on: what it holds could have changed, so it is revalidated first;
    // the store cannot answer, so it is served as its TTL (a day) allows.
    let edge = restart(&mut edge, &store.url, SLICES);
    let (status, body, cache) = get(&edge, &b, "k", true).await;
    assert_eq!((status, cache.as_str()), (200, "Stale from outpost"));
    assert!(body == data);

    let _store = TestStore::start_with(StoreOptions::default().data_dir(&dir).port(port));
    let (_, body, _) = until(&edge, &b, "k", true, "the store back", |g| {
        g.2 == "RefreshHit from outpost"
    })
    .await;
    assert!(body == data);
}

#[tokio::test]
async fn garbage_in_the_feed_is_never_half_applied_the_edge_resyncs_and_follows_on() {
    let store = TestStore::start_with(
        StoreOptions::default().config("[store]\nchange_keepalive_secs = 1\n"),
    );
    let proxy = FaultyOrigin::start(&store.addr);
    let edge = edge_for(&proxy.url, "");
    following(&edge).await;
    let s3 = store.client();
    let b = store.bucket(&s3, "garbage").await;
    put_bytes(&s3, &b, "k", "one").await;
    put_bytes(&s3, &b, "other", "kept").await;
    cached(&edge, &b, "k", true, b"one").await;
    cached(&edge, &b, "other", true, b"kept").await;
    let next = store_last_seq(&store).await + 1;

    // Half of the next event (a put of `other`): it must not drop `other`.
    let half = format!(
        "{{\"seq\":{next},\"time\":\"2026-01-01T00:00:00Z\",\"kind\":\"put\",\"bucket\":\"{b}\",\"key\":\"oth\n"
    );
    let reconnects = edge.metric("outpost_edge_feed_reconnects_total", &[]).await;
    proxy.inject_into_feed(half.as_bytes());
    let resyncs = "outpost_edge_feed_resyncs_total";
    reaches(&edge, resyncs, 2.0, "the edge never resynced on garbage").await;
    let reconnected = reconnects + 1.0;
    let again = "the edge never reconnected";
    reaches(
        &edge,
        "outpost_edge_feed_reconnects_total",
        reconnected,
        again,
    )
    .await;
    assert_eq!(
        edge.metric("outpost_edge_feed_last_seq", &[]).await,
        (next - 1) as f64,
        "nothing of the half line taken"
    );
    let (_, body, cache) = get(&edge, &b, "other", true).await;
    assert_eq!(
        (body.as_slice(), cache.as_str()),
        (&b"kept"[..], "RefreshHit from outpost"),
        "revalidated after the resync, not dropped by half an event"
    );
    // Reconnected: the next change reaches the edge as before.
    put_bytes(&s3, &b, "k", "two").await;
    until(&edge, &b, "k", true, "after the garbage", |g| g.1 == b"two").await;
}
