//! The change feed, end to end: one store, several edges following it, long TTLs (a day, the
//! default, and the test clock never moved), so whatever an edge stops serving it stops
//! serving because the store told it, not because an entry expired.

use std::time::{Duration, Instant};

use crate::common::faulty::{Fault, FaultyOrigin};
use crate::common::*;

/// Generous, for a loaded 2-core machine; the feed itself takes milliseconds.
pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

/// An edge in front of `origin`, with `extra` lines in its `[edge]` table.
pub(crate) fn edge_for(origin: &str, extra: &str) -> TestStore {
    edge_with(origin, extra, StoreOptions::default())
}

/// As [`edge_for`], started with `opts` (a cache dir to reuse, say).
pub(crate) fn edge_with(origin: &str, extra: &str, opts: StoreOptions) -> TestStore {
    let toml = format!("[edge]\norigins = [\"{origin}\"]\ntest_clock = true\n{extra}");
    TestStore::start_edge(&[], opts.config(&toml))
}

/// Waits until `edge` has heard from its origin's feed (its first contact counts a resync).
pub(crate) async fn following(edge: &TestStore) {
    let never = "the edge never followed the feed";
    reaches(edge, "outpost_edge_feed_resyncs_total", 1.0, never).await;
}

/// Waits until `edge`'s metric `name` (all its series) is at least `value`; else panics with
/// `never` after the deadline.
pub(crate) async fn reaches(edge: &TestStore, name: &str, value: f64, never: &str) {
    let started = Instant::now();
    while edge.metric(name, &[]).await < value {
        assert!(started.elapsed() < DEADLINE, "{never}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A GET through `edge` (signed with the root key, or anonymous): status, body, X-Cache.
pub(crate) async fn get(
    edge: &TestStore,
    bucket: &str,
    key: &str,
    signed: bool,
) -> (u16, Vec<u8>, String) {
    let mut r = RawRequest::new("GET", &format!("/{bucket}/{key}"));
    if signed {
        r = r.sign(edge);
    }
    let r = r.send(edge).await;
    let cache = r.header("x-cache").unwrap_or("").to_owned();
    (r.status, r.body, cache)
}

/// Polls `edge` until `done` holds for a GET, within the deadline; that answer.
pub(crate) async fn until(
    edge: &TestStore,
    bucket: &str,
    key: &str,
    signed: bool,
    what: &str,
    done: impl Fn(&(u16, Vec<u8>, String)) -> bool,
) -> (u16, Vec<u8>, String) {
    let started = Instant::now();
    loop {
        let got = get(edge, bucket, key, signed).await;
        if done(&got) {
            return got;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: edge {} still answers {} {:?} ({})",
            edge.url,
            got.0,
            String::from_utf8_lossy(&got.1),
            got.2
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Caches `key` at `edge` (a miss, then a hit of `data`). Polled: the events of what the test
/// just did at the store (its bucket's creation drops the bucket's entries) may reach a loaded
/// edge after its first fill.
pub(crate) async fn cached(edge: &TestStore, bucket: &str, key: &str, signed: bool, data: &[u8]) {
    let hit = |g: &(u16, Vec<u8>, String)| g.2 == "Hit from outpost";
    let (status, body, _) = until(edge, bucket, key, signed, "caching", hit).await;
    assert_eq!((status, body.as_slice()), (200, data));
}

/// Lets anyone read `bucket`'s objects.
pub(crate) async fn make_public(s3: &aws_sdk_s3::Client, bucket: &str) {
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(public_policy(bucket))
        .send()
        .await
        .unwrap();
}

pub(crate) fn public_policy(bucket: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    )
}

struct Network {
    store: TestStore,
    edges: Vec<TestStore>,
}

impl Network {
    async fn start(edges: usize) -> Network {
        let store = TestStore::start();
        let edges: Vec<TestStore> = (0..edges).map(|_| edge_for(&store.url, "")).collect();
        for edge in &edges {
            following(edge).await;
        }
        Network { store, edges }
    }
}

#[tokio::test]
async fn an_overwrite_or_a_delete_at_the_store_reaches_every_edge() {
    let net = Network::start(3).await;
    let s3 = net.store.client();
    let b = net.store.bucket(&s3, "fresh").await;
    put_bytes(&s3, &b, "index.html", "old page").await;
    for edge in &net.edges {
        cached(edge, &b, "index.html", true, b"old page").await;
    }
    put_bytes(&s3, &b, "index.html", "new page").await;
    for edge in &net.edges {
        let (_, _, cache) = until(edge, &b, "index.html", true, "overwrite", |g| {
            g.1 == b"new page"
        })
        .await;
        assert_eq!(
            cache, "Miss from outpost",
            "dropped by the feed, not revalidated by a TTL"
        );
        assert!(
            edge.metric("outpost_edge_feed_events_applied_total", &[("kind", "put")])
                .await
                >= 2.0
        );
    }
    s3.delete_object()
        .bucket(&b)
        .key("index.html")
        .send()
        .await
        .unwrap();
    for edge in &net.edges {
        until(edge, &b, "index.html", true, "delete", |g| g.0 == 404).await;
        assert!(edge.metric("outpost_edge_feed_last_seq", &[]).await >= 4.0);
    }
}

#[tokio::test]
async fn a_bucket_made_private_is_refused_to_anonymous_readers_at_every_edge() {
    let net = Network::start(3).await;
    let s3 = net.store.client();
    let b = net.store.bucket(&s3, "private").await;
    make_public(&s3, &b).await;
    put_bytes(&s3, &b, "photo.jpg", "jpeg").await;
    put_bytes(&s3, &b, "signed-only", "kept").await;
    for edge in &net.edges {
        cached(edge, &b, "photo.jpg", false, b"jpeg").await;
        cached(edge, &b, "signed-only", true, b"kept").await;
    }
    s3.delete_bucket_policy().bucket(&b).send().await.unwrap();
    for edge in &net.edges {
        until(edge, &b, "photo.jpg", false, "policy removed", |g| {
            g.0 == 403
        })
        .await;
        // Signed readers' entries are not the policy's: they stay.
        let (status, _, cache) = get(edge, &b, "signed-only", true).await;
        assert_eq!((status, cache.as_str()), (200, "Hit from outpost"));
    }
}

#[tokio::test]
async fn an_invalidation_posted_at_the_store_makes_every_edge_miss_only_what_it_names() {
    let net = Network::start(3).await;
    let s3 = net.store.client();
    let b = net.store.bucket(&s3, "inval").await;
    put_bytes(&s3, &b, "img/a.png", "a").await;
    put_bytes(&s3, &b, "css/site.css", "c").await;
    for edge in &net.edges {
        cached(edge, &b, "img/a.png", true, b"a").await;
        cached(edge, &b, "css/site.css", true, b"c").await;
    }
    let r = net.store.invalidate(&[&format!("/{b}/img/*")]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    for edge in &net.edges {
        let (_, body, cache) = until(edge, &b, "img/a.png", true, "invalidation", |g| {
            g.2 != "Hit from outpost"
        })
        .await;
        assert_eq!(
            (body.as_slice(), cache.as_str()),
            (&b"a"[..], "Miss from outpost")
        );
        let (_, _, cache) = get(edge, &b, "css/site.css", true).await;
        assert_eq!(cache, "Hit from outpost", "nothing else is purged");
    }
}

#[tokio::test]
async fn a_write_through_edge_a_is_read_through_edge_b() {
    let net = Network::start(2).await;
    let (a, b_edge) = (&net.edges[0], &net.edges[1]);
    let s3 = net.store.client();
    let b = net.store.bucket(&s3, "ab").await;
    put_bytes(&s3, &b, "doc", "version 1").await;
    cached(b_edge, &b, "doc", true, b"version 1").await;
    put_bytes(&a.client(), &b, "doc", "version 2").await;
    until(b_edge, &b, "doc", true, "written through A", |g| {
        g.1 == b"version 2"
    })
    .await;
}

#[tokio::test]
async fn an_edge_with_the_feed_off_keeps_what_it_holds() {
    let store = TestStore::start();
    let on = edge_for(&store.url, "");
    let off = edge_for(&store.url, "feed = false");
    following(&on).await;
    let s3 = store.client();
    let b = store.bucket(&s3, "off").await;
    put_bytes(&s3, &b, "k", "one").await;
    cached(&on, &b, "k", true, b"one").await;
    cached(&off, &b, "k", true, b"one").await;
    put_bytes(&s3, &b, "k", "two").await;
    until(&on, &b, "k", true, "overwrite", |g| g.1 == b"two").await;
    let (_, body, cache) = get(&off, &b, "k", true).await;
    assert_eq!(
        (body.as_slice(), cache.as_str()),
        (&b"one"[..], "Hit from outpost")
    );
    assert_eq!(
        off.metric("outpost_edge_feed_reconnects_total", &[]).await,
        0.0
    );
}

/// An edge behind a proxy the test cuts (every answer swallowed, every new connection reset)
/// while objects change at the store; the store sends keep-alives every second and the edge
/// gives up on a silent origin after 2.
pub(crate) struct Cut {
    pub(crate) store: TestStore,
    pub(crate) proxy: FaultyOrigin,
    pub(crate) edge: TestStore,
}

impl Cut {
    async fn start(store_toml: &str) -> Cut {
        Cut::start_with(store_toml, "").await
    }

    /// As [`Cut::start`], with `edge_toml` lines for the edge too.
    pub(crate) async fn start_with(store_toml: &str, edge_toml: &str) -> Cut {
        let store = TestStore::start_with(
            StoreOptions::default()
                .config(&format!("[store]\nchange_keepalive_secs = 1\n{store_toml}")),
        );
        let proxy = FaultyOrigin::start(&store.addr);
        let edge = edge_for(
            &proxy.url,
            &format!("origin_idle_timeout_secs = 2\norigin_timeout_secs = 2\n{edge_toml}"),
        );
        following(&edge).await;
        Cut { store, proxy, edge }
    }

    /// Cuts the feed, runs `change`, waits until the edge has noticed and tried again, and
    /// mends the path.
    pub(crate) async fn while_cut(&self, change: impl std::future::Future<Output = ()>) {
        let reconnects = self
            .edge
            .metric("outpost_edge_feed_reconnects_total", &[])
            .await;
        self.proxy.set(Fault::Reset);
        change.await;
        let started = Instant::now();
        while self
            .edge
            .metric("outpost_edge_feed_reconnects_total", &[])
            .await
            < reconnects + 2.0
        {
            assert!(
                started.elapsed() < DEADLINE,
                "the edge never noticed the cut"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.proxy.set(Fault::Pass);
    }
}

#[tokio::test]
async fn after_a_cut_feed_reconnects_no_edge_serves_what_changed() {
    let cut = Cut::start("").await;
    let s3 = cut.store.client();
    let b = cut.store.bucket(&s3, "cut").await;
    for k in ["changed", "deleted", "same"] {
        put_bytes(&s3, &b, k, "before").await;
        cached(&cut.edge, &b, k, true, b"before").await;
    }
    cut.while_cut(async {
        put_bytes(&s3, &b, "changed", "after").await;
        s3.delete_object()
            .bucket(&b)
            .key("deleted")
            .send()
            .await
            .unwrap();
    })
    .await;
    until(
        &cut.edge,
        &b,
        "changed",
        true,
        "changed during the cut",
        |g| g.1 == b"after",
    )
    .await;
    until(
        &cut.edge,
        &b,
        "deleted",
        true,
        "deleted during the cut",
        |g| g.0 == 404,
    )
    .await;
    let (_, _, cache) = get(&cut.edge, &b, "same", true).await;
    assert_eq!(
        cache, "Hit from outpost",
        "resumed where it stopped: nothing else touched"
    );
    assert_eq!(
        cut.edge
            .metric("outpost_edge_feed_resyncs_total", &[])
            .await,
        1.0,
        "first contact only"
    );
}

#[tokio::test]
async fn an_edge_that_missed_events_revalidates_what_it_holds_instead_of_flushing() {
    // The store keeps two events: the cut outlasts them.
    let cut = Cut::start("change_max_events = 2\n").await;
    let s3 = cut.store.client();
    let b = cut.store.bucket(&s3, "missed").await;
    for k in ["changed", "same"] {
        put_bytes(&s3, &b, k, "before").await;
        cached(&cut.edge, &b, k, true, b"before").await;
    }
    cut.while_cut(async {
        put_bytes(&s3, &b, "changed", "after").await;
        for i in 0..3 {
            put_bytes(&s3, &b, &format!("other{i}"), "x").await;
        }
    })
    .await;
    let started = Instant::now();
    while cut
        .edge
        .metric("outpost_edge_feed_resyncs_total", &[])
        .await
        < 2.0
    {
        assert!(
            started.elapsed() < DEADLINE,
            "the edge never learnt it missed events"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body, cache) = get(&cut.edge, &b, "same", true).await;
    assert_eq!(
        (status, body.as_slice(), cache.as_str()),
        (200, &b"before"[..], "RefreshHit from outpost"),
        "revalidated (a 304 keeps the body), not flushed"
    );
    let (_, body, _) = get(&cut.edge, &b, "changed", true).await;
    assert_eq!(body, b"after");
}

#[tokio::test]
async fn a_restarted_store_continues_its_numbers_and_edges_resume() {
    let mut store = TestStore::start_with(
        StoreOptions::default().config("[store]\nchange_keepalive_secs = 1\n"),
    );
    let edge = edge_for(
        &store.url,
        "origin_idle_timeout_secs = 2\norigin_timeout_secs = 2\n",
    );
    following(&edge).await;
    let s3 = store.client();
    let b = store.bucket(&s3, "restart").await;
    put_bytes(&s3, &b, "k", "one").await;
    cached(&edge, &b, "k", true, b"one").await;
    let (dir, port) = (store.data_dir.clone(), store.port);
    store.kill();
    let store = TestStore::start_with(StoreOptions::default().data_dir(&dir).port(port));
    put_bytes(&store.client(), &b, "k", "two").await;
    until(&edge, &b, "k", true, "overwritten after the restart", |g| {
        g.1 == b"two"
    })
    .await;
    assert_eq!(
        edge.metric("outpost_edge_feed_last_seq", &[]).await,
        3.0,
        "1, 2 before; 3 after"
    );
    assert_eq!(
        edge.metric("outpost_edge_feed_resyncs_total", &[]).await,
        1.0,
        "the same store: nothing missed"
    );
}
