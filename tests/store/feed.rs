//! The change feed at the store (`GET /_outpost/changes`, `POST /_outpost/invalidations`): every
//! committed change as one numbered NDJSON line, streamed as commits happen, for the root key
//! and edge keys only; numbers that keep growing across a restart; a clear "gone" for a number
//! past the retention.

use std::time::Duration;

use serde_json::Value;

use crate::common::feed::Feed;
use crate::common::keys::create_key;
use crate::common::*;

const WAIT: Duration = Duration::from_secs(30);

async fn hello(feed: &mut Feed) -> Value {
    assert_eq!(feed.status, 200);
    let line = feed.line(WAIT).await;
    assert_eq!(line["kind"], "hello", "{line}");
    line
}

#[tokio::test]
async fn the_feed_streams_each_committed_change_as_it_commits() {
    let store = TestStore::start_with(
        StoreOptions::default().config("[store]\nchange_keepalive_secs = 1\n"),
    );
    let s3 = store.client();
    let mut feed = Feed::open(&store, "after=0", None).await;
    assert_eq!(
        feed.headers["content-type"], "application/x-ndjson",
        "{:?}",
        feed.headers
    );
    let first = hello(&mut feed).await;
    assert_eq!(first["last"], 0);
    assert_eq!(first["store_id"].as_str().unwrap().len(), 32);

    // Changes made after the feed opened reach it: it is woken by their commits.
    let b = store.bucket(&s3, "feed").await;
    let put = put_bytes(&s3, &b, "dir/k", "one").await;
    s3.delete_objects()
        .bucket(&b)
        .delete(
            aws_sdk_s3::types::Delete::builder()
                .objects(
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key("dir/k")
                        .build()
                        .unwrap(),
                )
                .objects(
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key("never")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_policy()
        .bucket(&b)
        .policy(
            serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": "*", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{b}/*")}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(feed.event().await);
    }
    let kinds: Vec<&str> = got.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["bucket_create", "put", "delete", "policy"],
        "{got:?}"
    );
    let seqs: Vec<u64> = got.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(got[1]["bucket"], b.as_str());
    assert_eq!(got[1]["key"], "dir/k");
    assert_eq!(got[1]["etag"], put.e_tag().unwrap());
    assert_eq!(
        got[2]["key"], "dir/k",
        "the absent key of DeleteObjects is no event"
    );
    assert!(got[3].get("key").is_none());
    assert!(got[0]["time"].as_str().unwrap().ends_with('Z'));

    // Idle: keep-alive lines, naming the last number.
    let idle = feed.line(WAIT).await;
    assert_eq!(idle["kind"], "keepalive", "{idle}");
    assert_eq!(idle["last"], 4);

    // A reader resuming after 2 gets 3 and 4 again, nothing before.
    let mut resumed = Feed::open(&store, "after=2", None).await;
    assert_eq!(hello(&mut resumed).await["last"], 4);
    assert_eq!(resumed.event().await["seq"], 3);
    assert_eq!(resumed.event().await["seq"], 4);
    // No `after`: from now on.
    let mut now = Feed::open(&store, "", None).await;
    hello(&mut now).await;
    put_bytes(&s3, &b, "late", "x").await;
    assert_eq!(now.event().await["seq"], 5);
    assert_eq!(
        store.metric("outpost_s3_feed_subscribers", &[]).await,
        3.0,
        "three feeds open"
    );
    assert_eq!(
        store.metric("outpost_s3_feed_events_retained", &[]).await,
        5.0
    );
}

#[tokio::test]
async fn the_feed_is_for_the_root_key_and_edge_keys_only() {
    let store = TestStore::start();
    let (edge_id, edge_secret) = create_key(&store, "edge-1", &["--edge"]);
    let (app_id, app_secret) = create_key(&store, "app", &[]);

    let mut feed = Feed::open(&store, "after=0", Some(Some((&edge_id, &edge_secret)))).await;
    hello(&mut feed).await;

    for (who, keys) in [
        ("anonymous", None),
        (
            "a key that is not an edge's",
            Some((app_id.as_str(), app_secret.as_str())),
        ),
        ("a wrong secret", Some((edge_id.as_str(), "not-the-secret"))),
    ] {
        let refused = Feed::open(&store, "after=0", Some(keys)).await;
        assert_eq!(refused.status, 403, "{who}");
        let body = refused.json().await;
        let code = body["code"].as_str().unwrap();
        assert!(
            code == "AccessDenied" || code == "SignatureDoesNotMatch",
            "{who}: {body}"
        );
        if who != "a wrong secret" {
            assert_eq!(code, "AccessDenied", "{who}");
        }
    }
    for bad in [
        "after=abc",
        "after=-1",
        "after=",
        "after=1&after=2",
        "after=99999999999999999999999",
    ] {
        let refused = Feed::open(&store, bad, None).await;
        assert_eq!(refused.status, 400, "{bad}");
        assert_eq!(refused.json().await["code"], "InvalidArgument", "{bad}");
    }
    // Invalidations: the same keys; a body that is not the JSON expected is refused.
    let r = RawRequest::new("POST", "/_outpost/invalidations")
        .header("content-type", "application/json")
        .body(r#"{"paths":["/b/k"]}"#)
        .send(&store)
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    for bad in [
        r#"{"paths":"/b/k"}"#,
        r#"{"paths":[]}"#,
        "paths",
        r#"{"paths":["/b"],"x":1}"#,
    ] {
        let r = RawRequest::new("POST", "/_outpost/invalidations")
            .header("content-type", "application/json")
            .body(bad)
            .sign(&store)
            .send(&store)
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
}

#[tokio::test]
async fn an_invalidation_posted_at_the_store_is_an_event() {
    let store = TestStore::start();
    let r = store.invalidate(&["/site/index.html", "site/img/*"]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let answer: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(answer["seq"], 1);
    let mut feed = Feed::open(&store, "after=0", None).await;
    hello(&mut feed).await;
    let event = feed.event().await;
    assert_eq!(event["kind"], "invalidation");
    assert_eq!(event["seq"], 1);
    assert_eq!(
        event["paths"],
        serde_json::json!(["/site/index.html", "/site/img/*"])
    );
}

#[tokio::test]
async fn a_number_past_the_retention_is_gone() {
    let store =
        TestStore::start_with(StoreOptions::default().config("[store]\nchange_max_events = 2\n"));
    let s3 = store.client();
    let b = store.bucket(&s3, "gone").await;
    for i in 0..4 {
        put_bytes(&s3, &b, &format!("k{i}"), "x").await;
    }
    // Events 1..=3 were dropped (two kept: 4 and 5).
    let gone = Feed::open(&store, "after=2", None).await;
    assert_eq!(gone.status, 410);
    let body = gone.json().await;
    assert_eq!(body["code"], "ChangesGone", "{body}");
    assert_eq!(body["oldest"], 4);
    assert_eq!(body["last"], 5);
    assert_eq!(body["store_id"].as_str().unwrap().len(), 32);
    // A number this store never gave: other data.
    let ahead = Feed::open(&store, "after=6", None).await;
    assert_eq!(ahead.status, 410);
    // Right at the edge of what is kept: fine.
    let mut kept = Feed::open(&store, "after=3", None).await;
    hello(&mut kept).await;
    assert_eq!(kept.event().await["seq"], 4);
}

#[tokio::test]
async fn numbers_continue_after_the_store_is_killed_and_restarted() {
    let mut store = TestStore::start();
    let s3 = store.client();
    let b = store.bucket(&s3, "restart").await;
    put_bytes(&s3, &b, "k", "one").await;
    let mut feed = Feed::open(&store, "after=0", None).await;
    let before = hello(&mut feed).await;
    assert_eq!(before["last"], 2);
    let (dir, port) = (store.data_dir.clone(), store.port);
    store.kill();
    drop(feed);
    let store = TestStore::start_with(StoreOptions::default().data_dir(&dir).port(port));
    let mut feed = Feed::open(&store, "after=2", None).await;
    let after = hello(&mut feed).await;
    assert_eq!(after["last"], 2);
    assert_eq!(
        after["store_id"], before["store_id"],
        "the same data, the same id"
    );
    put_bytes(&store.client(), &b, "k", "two").await;
    assert_eq!(feed.event().await["seq"], 3);
}

#[tokio::test]
async fn outpost_invalidate_posts_the_paths_as_one_event() {
    let store = TestStore::start();
    let run = |creds: Option<(&str, &str)>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_outpost"));
        cmd.args([
            "invalidate",
            "--endpoint",
            &store.url,
            "/site/index.html",
            "/site/img/*",
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        if let Some((id, secret)) = creds {
            cmd.env("AWS_ACCESS_KEY_ID", id)
                .env("AWS_SECRET_ACCESS_KEY", secret);
        }
        cmd.output().expect("run outpost invalidate")
    };
    let out = run(Some((ACCESS_KEY, SECRET_KEY)));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("accepted as change 1"), "{stdout}");
    let mut feed = Feed::open(&store, "after=0", None).await;
    hello(&mut feed).await;
    let event = feed.event().await;
    assert_eq!(
        event["paths"],
        serde_json::json!(["/site/index.html", "/site/img/*"])
    );
    // A key that is neither the root's nor an edge's is refused.
    let (app_id, app_secret) = create_key(&store, "app", &[]);
    let out = run(Some((&app_id, &app_secret)));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AccessDenied"));
    assert!(!run(None).status.success(), "no credentials");
}

#[tokio::test]
async fn a_store_shutting_down_ends_its_feeds_instead_of_waiting_for_them() {
    let store = TestStore::start();
    let mut feed = Feed::open(&store, "", None).await;
    hello(&mut feed).await;
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &store.pid.to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    feed.end(WAIT).await;
    // And the process exits (a zombie until the harness reaps it).
    let started = std::time::Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", store.pid)).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        if matches!(state, None | Some("Z" | "X")) {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the store did not exit: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
