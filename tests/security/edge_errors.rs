//! Item 12: the edge reports what really happened. An origin's own error answer reaches the
//! client as the origin gave it (not "the origin is unreachable"); too large a header section is
//! an S3 XML error at store and edge (up to 100 headers); Complete's `<Location>` names the edge as the client
//! addressed it, never the origin's internal address; the edge running out of file descriptors
//! is the edge's own 503 SlowDown and never opens the origin's circuit.

use std::time::Duration;

use crate::common::{
    ACCESS_KEY, EdgePair, MIB, RawRequest, SECRET_KEY, StoreOptions, TestStore, client_for,
    complete_upload, object_bytes, put_bytes, random_bytes, start_upload, upload_parts,
};

/// `GET target` with `count` extra headers of about `value_len` bytes each.
async fn with_headers(
    server: &TestStore,
    target: &str,
    count: usize,
    value_len: usize,
) -> crate::common::raw::RawResponse {
    let mut request = RawRequest::new("GET", target);
    let value = "v".repeat(value_len);
    for i in 0..count {
        request = request.header(&format!("x-extra-{i}"), &value);
    }
    request.sign(server).send(server).await
}

#[tokio::test]
async fn many_headers_are_served_and_too_many_is_an_s3_error_at_store_and_edge() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "hdrs").await;
    put_bytes(&s3, &b, "k", "value").await;
    let target = format!("/{b}/k");
    for server in [&pair.store, &pair.edge] {
        // Up to hyper's default of 100 (with the signing headers), within the header size
        // limit (16 KiB).
        let r = with_headers(server, &target, 90, 8).await;
        assert_eq!((r.status, r.text().as_str()), (200, "value"), "90 headers");
        // Past the size limit, in many headers.
        let r = with_headers(server, &target, 90, 200).await;
        r.assert_error(400, "RequestHeaderSectionTooLarge");
        // Past 100 headers: hyper's own answer (the count is kept at hyper's default for
        // speed, README), and the server goes on serving.
        let r = with_headers(server, &target, 150, 8).await;
        assert_eq!(r.status, 431, "150 headers");
        let r = with_headers(server, &target, 1, 8).await;
        assert_eq!(r.status, 200, "still serving");
    }
}

#[tokio::test]
async fn complete_names_the_edge_in_its_location() {
    let pair = EdgePair::start();
    let edge = client_for(&pair.edge.url, ACCESS_KEY, SECRET_KEY);
    let b = pair.store.bucket(&pair.store.client(), "loc").await;
    let part = random_bytes(5 * MIB, 1);
    let key = "dir/a b+c.bin";
    let id = start_upload(&edge, &b, key).await;
    let parts = upload_parts(&edge, &b, key, &id, &[&part]).await;
    let done = complete_upload(&edge, &b, key, &id, parts).await;
    let location = done.location().expect("a Location");
    assert_eq!(
        location,
        format!("{}/{b}/dir/a%20b%2Bc.bin", pair.edge.url),
        "the edge as the client addressed it"
    );
    assert!(!location.contains(&pair.store.addr), "{location}");
    assert_eq!(object_bytes(&pair.store.client(), &b, key).await, part);
}

#[tokio::test]
async fn an_origin_refusing_a_too_large_delete_body_is_passed_on_as_it_answered() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "bigdel").await;
    put_bytes(&s3, &b, "k", "kept").await;
    // Larger than the store's 2 MiB DeleteObjects limit: a well-formed start, then padding.
    let mut body = b"<Delete><Object><Key>k</Key></Object>".to_vec();
    body.resize(6 * MIB, b' ');
    let md5 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(crate::common::hash::md5(&body))
    };
    let mut answers = Vec::new();
    for server in [&pair.store, &pair.edge] {
        let r = RawRequest::new("POST", &format!("/{b}?delete"))
            .header("content-md5", &md5)
            .body(body.clone())
            .sign(server)
            .send(server)
            .await;
        answers.push((r.status, r.code()));
    }
    assert_eq!(answers[0].0, 400, "the store refuses: {answers:?}");
    assert_eq!(answers[1], answers[0], "the edge answers as the store did");
    assert_eq!(object_bytes(&s3, &b, "k").await, b"kept");
}

#[tokio::test]
async fn an_upload_over_the_stores_size_limit_gets_the_stores_answer_through_the_edge() {
    let store =
        TestStore::start_with(StoreOptions::default().env("OUTPOST_MAX_OBJECT_SIZE", "1048576"));
    let edge = TestStore::start_edge(&[&store], StoreOptions::default());
    let s3 = store.client();
    let b = store.bucket(&s3, "toobig").await;
    put_bytes(&s3, &b, "k", "kept").await;
    // Refused from its Content-Length, before the store reads any of it.
    let data = random_bytes(8 * MIB, 2);
    for server in [&store, &edge] {
        let r = RawRequest::new("PUT", &format!("/{b}/k"))
            .body(data.clone())
            .sign(server)
            .send(server)
            .await;
        r.assert_error(400, "EntityTooLarge");
    }
    assert_eq!(object_bytes(&s3, &b, "k").await, b"kept");
}

/// The edge's open descriptors, by number.
fn open_fds(pid: u32) -> Vec<u32> {
    let mut fds: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

#[tokio::test]
async fn an_edge_out_of_file_descriptors_says_so_and_keeps_its_origin() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: needs prlimit(1) to lower the edge's open-file limit");
        return;
    }
    // A primary, and a failover that has none of the primary's buckets: were the shortage held
    // against the primary, the next request would go to the failover and find no bucket.
    let primary = TestStore::start();
    let failover = TestStore::start();
    // No change feed: its confirmations to the store keep a pooled origin connection open,
    // which the request below would reuse instead of needing a new descriptor.
    let no_feed = StoreOptions::default().config("[edge]\nfeed = false\n");
    let edge = TestStore::start_edge(&[&primary, &failover], no_feed);
    let s3 = primary.client();
    let b = primary.bucket(&s3, "fds").await;
    put_bytes(&s3, &b, "k", "kept").await;

    // No origin connection is open yet. Lower the limit to just above the highest descriptor,
    // fill every free number below it with idle client connections, then ask on the last one:
    // the edge has no descriptor left for the connection to its origin.
    let fds = open_fds(edge.pid);
    let limit = fds.last().unwrap() + 2;
    let free = limit as usize - fds.len();
    let set_soft_limit = |soft: &str| {
        let status = std::process::Command::new("prlimit")
            .args(["--pid", &edge.pid.to_string(), &format!("--nofile={soft}:")])
            .status()
            .expect("prlimit");
        assert!(status.success(), "prlimit --nofile={soft}:");
    };
    let before = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &edge.pid.to_string(),
            "--nofile",
            "--raw",
            "--noheadings",
            "--output",
            "SOFT",
        ])
        .output()
        .expect("prlimit");
    let before = String::from_utf8(before.stdout).unwrap().trim().to_owned();
    set_soft_limit(&limit.to_string());
    let mut idle = Vec::new();
    for _ in 0..free - 1 {
        idle.push(std::net::TcpStream::connect(&edge.addr).unwrap());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while open_fds(edge.pid).len() < limit as usize - 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the edge did not accept the fillers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = RawRequest::new("GET", &format!("/{b}?list-type=2"))
        .sign(&edge)
        .timeout(Duration::from_secs(20))
        .send(&edge)
        .await;
    r.assert_error(503, "SlowDown");
    assert!(!r.text().contains("unreachable"), "{}", r.text());

    // Descriptors back: the primary, never blamed, serves at once.
    drop(idle);
    set_soft_limit(&before);
    let r = RawRequest::new("GET", &format!("/{b}/k"))
        .sign(&edge)
        .send(&edge)
        .await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "kept"),
        "still the primary"
    );
}
