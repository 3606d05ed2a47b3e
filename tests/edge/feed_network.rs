//! A network on one machine, and what the store knows of it: `outpost up --edges 3` runs a
//! store and three edges that all follow its change feed (an overwrite at the store is served
//! new by every edge, over plain HTTP and with `--tls`); each edge names itself to the store
//! and confirms what it applied, so `outpost invalidate` reports every edge, an edge that is
//! down included (not confirmed; the command still succeeds with the invalidation's id).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::feed::Feed;
use crate::common::keys::create_key;
use crate::common::*;
use crate::feed::make_public;

/// Generous, for a loaded 2-core machine; the feed itself takes milliseconds.
const DEADLINE: Duration = Duration::from_secs(30);
const EDGE_LINE: &str = "outpost edge listening on ";

/// `outpost invalidate --endpoint STORE --wait SECS PATHS` with the test root key (and the CA
/// of `outpost up --tls`): whether it succeeded, its stdout.
fn invalidate(store: &TestStore, ca: Option<&Path>, wait: u64, paths: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outpost"));
    cmd.args(["invalidate", "--endpoint", &store.url])
        .args(["--wait", &wait.to_string()])
        .args(paths)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    if let Some(ca) = ca {
        cmd.env("AWS_CA_BUNDLE", ca);
    }
    let out = cmd.output().expect("run outpost invalidate");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("accepted as change"),
        "{stdout}\nstderr: {stderr}"
    );
    (out.status.success(), stdout)
}

/// The line `outpost invalidate` printed about the edge at `url`.
fn line_for<'a>(report: &'a str, url: &str) -> &'a str {
    let name = format!("  edge {url} ");
    report
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("no line for {url} in:\n{report}"))
}

/// Waits until the edge at `url` has heard from its origin's feed.
async fn following(http: &reqwest::Client, url: &str) {
    let started = Instant::now();
    loop {
        let metrics = http.get(format!("{url}/_outpost/metrics")).send().await;
        let text = match metrics {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if metric_sum(&text, "outpost_edge_feed_resyncs_total", &[]) >= 1.0 {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the edge {url} never followed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An anonymous GET through the edge at `url`: body and X-Cache.
async fn get(http: &reqwest::Client, url: &str) -> (u16, Vec<u8>, String) {
    let r = http.get(url).send().await.expect("the edge answers");
    let status = r.status().as_u16();
    let cache = r
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, r.bytes().await.unwrap().to_vec(), cache)
}

/// Polls `url` until its body passes `done`.
async fn until(http: &reqwest::Client, url: &str, what: &str, done: impl Fn(&[u8]) -> bool) {
    let started = Instant::now();
    loop {
        let (status, body, cache) = get(http, url).await;
        if done(&body) {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: {url} still answers {status} {:?} ({cache})",
            String::from_utf8_lossy(&body)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `outpost up --edges 3 [--tls]`: three edges on ports of their own, each with its own cache
/// directory, all following the store: an object cached at each is served new by each once
/// it is overwritten at the store; `outpost invalidate` hears from all three.
async fn three_edges_follow_the_store(tls: bool) {
    let mut args = vec!["--edges", "3"];
    if tls {
        args.push("--tls");
    }
    let store = TestStore::start_up(&args, StoreOptions::default());
    let edges = store.printed_all(EDGE_LINE, 3).await;
    let scheme = if tls { "https://" } else { "http://" };
    assert!(edges.iter().all(|e| e.starts_with(scheme)), "{edges:?}");
    let mut distinct = edges.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{edges:?}");
    for dir in ["edge-cache", "edge-cache-1", "edge-cache-2"] {
        assert!(store.data_dir.join(dir).is_dir(), "{dir}");
    }
    let listed = store
        .printed("3 edges, all following the store's change feed: ")
        .expect("the edges listed");
    assert_eq!(listed, edges.join(" "));

    let ca = tls.then(|| tls::local_ca(&store.data_dir.join("tls")));
    let (s3, http) = match &ca {
        Some(ca) => (tls::sdk_client(&store, ca), tls::reqwest_client(ca)),
        None => (store.client(), reqwest::Client::new()),
    };
    for edge in &edges {
        following(&http, edge).await;
    }
    let b = store.bucket(&s3, "net").await;
    make_public(&s3, &b).await;
    put_bytes(&s3, &b, "index.html", "old page").await;
    for edge in &edges {
        // Public once the edge holds the store's new access document (polled every second).
        let url = format!("{edge}/{b}/index.html");
        until(&http, &url, "the old page", |body| body == b"old page").await;
        let (status, body, cache) = get(&http, &url).await;
        assert_eq!((status, body.as_slice()), (200, &b"old page"[..]), "{edge}");
        assert!(cache.starts_with("Hit"), "{edge}: {cache}");
    }
    put_bytes(&s3, &b, "index.html", "new page").await;
    for edge in &edges {
        let url = format!("{edge}/{b}/index.html");
        until(&http, &url, "the new page", |body| body == b"new page").await;
    }

    let (ok, report) = invalidate(&store, ca.as_ref().map(|c| c.ca.as_path()), 30, &["/x/y"]);
    assert!(ok, "{report}");
    for edge in &edges {
        let line = line_for(&report, edge);
        assert!(
            line.contains("(key outpost-up-edge): applied within "),
            "{line}"
        );
    }
}

#[tokio::test]
async fn outpost_up_runs_three_edges_that_all_follow_the_store() {
    three_edges_follow_the_store(false).await;
}

#[tokio::test]
async fn outpost_up_runs_three_edges_that_all_follow_the_store_over_tls() {
    three_edges_follow_the_store(true).await;
}

/// The store's list of subscribers (root key).
async fn subscribers(store: &TestStore) -> Vec<Value> {
    let r = RawRequest::new("GET", "/_outpost/changes/subscribers")
        .sign(store)
        .send(store)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let listed: Value = serde_json::from_slice(&r.body).unwrap();
    listed["subscribers"].as_array().unwrap().clone()
}

/// Polls the store's list of subscribers until `done` holds.
async fn until_listed(
    store: &TestStore,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let list = subscribers(store).await;
        if done(&list) {
            return list;
        }
        assert!(started.elapsed() < DEADLINE, "{what}: {list:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn edge_for(store: &TestStore) -> TestStore {
    let toml = format!("[edge]\norigins = [\"{}\"]\n", store.url);
    TestStore::start_edge(&[], StoreOptions::default().config(&toml))
}

#[tokio::test]
async fn outpost_invalidate_reports_every_edge_and_one_that_is_down() {
    let store = TestStore::start();
    let a = edge_for(&store);
    let mut b = edge_for(&store);
    let both = |list: &[Value]| {
        [&a, &b].iter().all(|e| {
            list.iter()
                .any(|s| s["edge"] == e.url.as_str() && s["applied"].is_u64())
        })
    };
    until_listed(&store, "both edges follow and confirm", both).await;

    let (ok, report) = invalidate(&store, None, 30, &["/site/index.html"]);
    assert!(ok, "{report}");
    for edge in [&a, &b] {
        let line = line_for(&report, &edge.url);
        assert!(line.contains("(key root): applied within "), "{line}");
    }

    b.kill();
    let (ok, report) = invalidate(&store, None, 2, &["/site/*"]);
    assert!(ok, "an edge that is down fails nothing: {report}");
    assert!(report.starts_with("Invalidation "), "{report}");
    let line = line_for(&report, &a.url);
    assert!(line.contains("applied within "), "{line}");
    let line = line_for(&report, &b.url);
    assert!(line.contains("not confirmed within 2 s"), "{line}");

    // Without waiting: the id alone.
    let (ok, report) = invalidate(&store, None, 0, &["/site/a"]);
    assert!(ok);
    assert_eq!(report.lines().count(), 1, "{report}");
}

/// `POST /_outpost/changes/applied` and `GET /_outpost/changes/subscribers`, refused to whoever
/// may not: only the feed's own key confirms for it, numbers the store never gave are refused,
/// and only the root key reads the list.
#[tokio::test]
async fn confirmations_and_the_subscriber_list_are_for_their_keys_only() {
    let store = TestStore::start_with(
        StoreOptions::default().config("[store]\nchange_keepalive_secs = 1\n"),
    );
    let (edge_id, edge_secret) = create_key(&store, "edge-1", &["--edge"]);
    let (other_id, other_secret) = create_key(&store, "edge-2", &["--edge"]);
    let (app_id, app_secret) = create_key(&store, "app", &[]);
    let edge_keys = Some(Some((edge_id.as_str(), edge_secret.as_str())));
    // Listening on every interface: the store names it by the address it comes from.
    let announced = [("x-outpost-edge", "http://0.0.0.0:7777")];
    let mut feed = Feed::open_with(&store, "after=0", edge_keys, &announced).await;
    assert_eq!(feed.status, 200);
    let subscription: u64 = feed.headers["x-outpost-subscription"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let hello = feed.line(DEADLINE).await;
    let last = hello["last"].as_u64().unwrap();

    let list = subscribers(&store).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], subscription);
    assert_eq!(list[0]["key"], "edge-1");
    assert_eq!(list[0]["edge"], "http://127.0.0.1:7777");
    assert_eq!(list[0]["connected"], true);
    assert_eq!(list[0]["applied"], Value::Null);

    let confirm = |query: String, keys: Option<(&str, &str)>| {
        let request = RawRequest::new("POST", &format!("/_outpost/changes/applied?{query}"));
        let request = match keys {
            Some((id, secret)) => {
                request
                    .sign_with(&store, &SignOpts::default().keys(id, secret))
                    .0
            }
            None => request,
        };
        request.send(&store)
    };
    let mine = Some((edge_id.as_str(), edge_secret.as_str()));
    let ok = confirm(format!("subscription={subscription}&seq={last}"), mine).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(subscribers(&store).await[0]["applied"], last);

    let code = |r: &raw::RawResponse| {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        (r.status, body["code"].as_str().unwrap_or("").to_owned())
    };
    let at = |seq: &str| format!("subscription={subscription}&seq={seq}");
    let other = Some((other_id.as_str(), other_secret.as_str()));
    let app = Some((app_id.as_str(), app_secret.as_str()));
    for (what, query, keys, status, expected) in [
        ("anonymous", at("0"), None, 403, "AccessDenied"),
        (
            "a key that is not an edge's",
            at("0"),
            app,
            403,
            "AccessDenied",
        ),
        (
            "another edge's key",
            at("0"),
            other,
            404,
            "NoSuchSubscription",
        ),
        (
            "a subscription never given",
            "subscription=99999&seq=0".into(),
            mine,
            404,
            "NoSuchSubscription",
        ),
        (
            "a number never given",
            at(&(last + 1).to_string()),
            mine,
            400,
            "InvalidArgument",
        ),
        ("not a number", at("abc"), mine, 400, "InvalidArgument"),
        (
            "no number",
            format!("subscription={subscription}"),
            mine,
            400,
            "InvalidArgument",
        ),
        (
            "no subscription",
            "seq=0".into(),
            mine,
            400,
            "InvalidArgument",
        ),
    ] {
        let r = confirm(query, keys).await;
        assert_eq!(
            code(&r),
            (status, expected.to_owned()),
            "{what}: {}",
            r.text()
        );
    }
    assert_eq!(subscribers(&store).await[0]["applied"], last, "unchanged");

    for (who, keys) in [("an edge key", mine), ("anonymous", None)] {
        let request = RawRequest::new("GET", "/_outpost/changes/subscribers");
        let request = match keys {
            Some((id, secret)) => {
                request
                    .sign_with(&store, &SignOpts::default().keys(id, secret))
                    .0
            }
            None => request,
        };
        let r = request.send(&store).await;
        assert_eq!(
            code(&r),
            (403, "AccessDenied".to_owned()),
            "{who}: {}",
            r.text()
        );
    }

    // The reader goes: still listed, as gone (the store notices at its next keep-alive).
    drop(feed);
    let list = until_listed(&store, "the reader is seen to leave", |list| {
        list.first().is_some_and(|s| s["connected"] == false)
    })
    .await;
    assert!(list[0]["left_at"].is_string(), "{list:?}");
}
