//! HTTPS on the store's listener (issue 12): aws-sdk-s3 over TLS, HTTP/2 and HTTP/1.1 on one
//! port chosen by ALPN, concurrent streams and a large download over h2, certificates replaced
//! while the store runs (SIGHUP, or the files changing) without dropping open connections, a
//! bad new certificate refused while the old one keeps serving, and the hostile cases: plain
//! HTTP to the TLS port, TLS 1.0/1.1 clients, stalled handshakes.

use std::time::{Duration, Instant};

use aws_sdk_s3::presigning::PresigningConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::tls::{local_ca, reqwest_client, sdk_client, store_options};
use crate::common::*;

fn https_store() -> (TestStore, tempfile::TempDir, outpost_store::tls::LocalCa) {
    let dir = tempfile::tempdir().unwrap();
    let ca = local_ca(dir.path());
    let store = TestStore::start_with(store_options(&ca));
    assert!(store.url.starts_with("https://"), "{}", store.url);
    (store, dir, ca)
}

async fn presigned_get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .unwrap()
        .uri()
        .to_string()
}

#[tokio::test]
async fn the_sdk_works_over_https_and_both_http_versions_share_the_port() {
    let (store, _dir, ca) = https_store();
    let s3 = sdk_client(&store, &ca);
    let b = store.bucket(&s3, "tls").await;
    let data = random_bytes(5 * MIB + 17, 1);
    put_bytes(&s3, &b, "k", data.clone()).await;
    assert_eq!(object_bytes(&s3, &b, "k").await, data);

    let url = presigned_get(&s3, &b, "k").await;
    let h2 = reqwest_client(&ca).get(&url).send().await.unwrap();
    assert_eq!(h2.version(), reqwest::Version::HTTP_2);
    assert_eq!(h2.bytes().await.unwrap(), data);
    let h1 = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&ca.ca).unwrap()).unwrap(),
        )
        .http1_only()
        .build()
        .unwrap();
    let answer = h1.get(&url).send().await.unwrap();
    assert_eq!(answer.version(), reqwest::Version::HTTP_11);
    assert_eq!(answer.bytes().await.unwrap(), data);
}

#[tokio::test]
async fn h2_carries_concurrent_streams_and_a_large_download_on_one_connection() {
    let (store, _dir, ca) = https_store();
    let s3 = sdk_client(&store, &ca);
    let b = store.bucket(&s3, "h2").await;
    let big = random_bytes(24 * MIB, 2);
    put_bytes(&s3, &b, "big", big.clone()).await;
    for i in 0..8 {
        put_bytes(&s3, &b, &format!("small-{i}"), vec![i as u8; 1000 + i]).await;
    }
    let client = reqwest_client(&ca);
    let big_url = presigned_get(&s3, &b, "big").await;
    let mut small_urls = Vec::new();
    for i in 0..32 {
        small_urls.push((
            i % 8,
            presigned_get(&s3, &b, &format!("small-{}", i % 8)).await,
        ));
    }
    // The large body is read slowly at first, so that h2 flow control has to hold the server
    // back while the small streams share the connection.
    let big_read = {
        let client = client.clone();
        async move {
            let mut answer = client.get(&big_url).send().await.unwrap();
            assert_eq!(answer.version(), reqwest::Version::HTTP_2);
            let mut got = Vec::new();
            while let Some(chunk) = answer.chunk().await.unwrap() {
                if got.len() < MIB {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                got.extend_from_slice(&chunk);
            }
            got
        }
    };
    let smalls = futures::future::join_all(small_urls.into_iter().map(|(i, url)| {
        let client = client.clone();
        async move {
            let answer = client.get(&url).send().await.unwrap();
            assert_eq!(answer.version(), reqwest::Version::HTTP_2);
            assert_eq!(answer.status(), 200);
            (i, answer.bytes().await.unwrap())
        }
    }));
    let (got, smalls) = tokio::join!(big_read, smalls);
    assert!(got == big, "the large download over h2 differs");
    for (i, body) in smalls {
        assert_eq!(body.to_vec(), vec![i as u8; 1000 + i]);
    }
}

#[tokio::test]
async fn plain_http_to_the_tls_port_is_answered_and_closed() {
    let (store, _dir, _ca) = https_store();
    let mut tcp = tokio::net::TcpStream::connect(&store.addr).await.unwrap();
    tcp.write_all(b"GET /b/k HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_string(&mut answer))
        .await
        .expect("the store answered and closed")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("<Code>InvalidRequest</Code>"), "{answer}");
    assert!(answer.contains("https://"), "{answer}");

    // Bytes that are neither TLS nor HTTP: a clean close, no hang.
    let mut tcp = tokio::net::TcpStream::connect(&store.addr).await.unwrap();
    tcp.write_all(&[0, 1, 2, 3]).await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection was left open");
}

#[tokio::test]
async fn clients_offering_only_tls_1_0_or_1_1_are_refused() {
    let (store, _dir, ca) = https_store();
    let curl = |extra: &[&str]| {
        std::process::Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "--max-time", "10", "--cacert"])
            .arg(&ca.ca)
            .args(extra)
            .arg(format!("{}/_outpost/health", store.url))
            .output()
            .expect("curl runs")
    };
    let modern = curl(&[]);
    assert!(modern.status.success(), "{modern:?}");
    for old in [
        ["--tlsv1.0", "--tls-max", "1.0"],
        ["--tlsv1.1", "--tls-max", "1.1"],
    ] {
        let refused = curl(&old);
        assert!(!refused.status.success(), "{old:?} was accepted");
    }
    let tls12 = curl(&["--tlsv1.2", "--tls-max", "1.2"]);
    assert!(tls12.status.success(), "TLS 1.2 refused: {tls12:?}");
}

/// Serves the CA's chain of `dir` at the store's certificate paths.
fn install(from: &outpost_store::tls::LocalCa, to: &outpost_store::tls::LocalCa) {
    // Key first, then chain: a reload between the two sees a mismatched pair and keeps the
    // old one, which is what must happen.
    std::fs::copy(&from.files.key, &to.files.key).unwrap();
    std::fs::copy(&from.files.cert, &to.files.cert).unwrap();
}

async fn trusted_by(ca: &outpost_store::tls::LocalCa, store: &TestStore) -> bool {
    let client = reqwest_client(ca);
    let answer = client
        .get(format!("{}/_outpost/health", store.url))
        .send()
        .await;
    answer.is_ok_and(|a| a.status() == 200)
}

#[tokio::test]
async fn certificates_rotate_on_sighup_and_open_connections_finish() {
    let (mut store, _dir, first) = https_store();
    let next_dir = tempfile::tempdir().unwrap();
    let next = local_ca(next_dir.path());
    assert!(trusted_by(&first, &store).await);
    assert!(!trusted_by(&next, &store).await);

    // A download on a connection opened with the first certificate, read slowly.
    let s3 = sdk_client(&store, &first);
    let b = store.bucket(&s3, "rot").await;
    let big = random_bytes(16 * MIB, 3);
    put_bytes(&s3, &b, "big", big.clone()).await;
    let url = presigned_get(&s3, &b, "big").await;
    let mut open = reqwest_client(&first).get(&url).send().await.unwrap();
    let mut got = open.chunk().await.unwrap().unwrap().to_vec();

    install(&next, &first);
    store.signal_hangup();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !trusted_by(&next, &store).await {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !trusted_by(&first, &store).await,
        "the old certificate is still served"
    );

    while let Some(chunk) = open.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert!(got == big, "the open download did not finish intact");
    store.kill();
}

#[tokio::test]
async fn a_changed_certificate_file_is_picked_up_without_a_signal() {
    let (store, _dir, first) = https_store();
    let next_dir = tempfile::tempdir().unwrap();
    let next = local_ca(next_dir.path());
    install(&next, &first);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !trusted_by(&next, &store).await {
        assert!(
            Instant::now() < deadline,
            "the changed files were never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_bad_new_certificate_keeps_the_old_one_and_says_why() {
    let (store, _dir, first) = https_store();
    let other_dir = tempfile::tempdir().unwrap();
    let other = local_ca(other_dir.path());
    let good_cert = std::fs::read(&first.files.cert).unwrap();
    // Garbage, then a key that does not belong to the chain.
    for (cert, key) in [
        (b"not a certificate".to_vec(), None),
        (good_cert, Some(&other.files.key)),
    ] {
        std::fs::write(&first.files.cert, cert).unwrap();
        if let Some(key) = key {
            std::fs::copy(key, &first.files.key).unwrap();
        }
        store.signal_hangup();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            trusted_by(&first, &store).await,
            "the old certificate stopped serving"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store.stderr().contains("not a certificate and its key") {
        assert!(
            Instant::now() < deadline,
            "no reason logged:\n{}",
            store.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(store.stderr().contains("still serving the previous one"));
}

#[tokio::test]
async fn stalled_handshakes_do_not_hold_back_other_clients() {
    let (store, _dir, ca) = https_store();
    // Connections that say nothing, and connections that begin a handshake and stall.
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(tokio::net::TcpStream::connect(&store.addr).await.unwrap());
    }
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut tcp = tokio::net::TcpStream::connect(&store.addr).await.unwrap();
        tcp.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
        stalled.push(tcp);
    }
    let started = Instant::now();
    assert!(trusted_by(&ca, &store).await);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // The stalled ones are closed at the handshake timeout (10 s).
    let mut tcp = stalled.pop().unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "a stalled handshake was kept open");
}

/// `aws:SecureTransport` is true over TLS and false over the plain listener beside it: a
/// policy denying plain HTTP holds on one and not the other.
#[tokio::test]
async fn secure_transport_in_a_policy_tells_the_two_listeners_apart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = local_ca(dir.path());
    let store = TestStore::start_with(store_options(&ca).env("OUTPOST_HTTP_LISTEN", "127.0.0.1:0"));
    let plain_url = store
        .printed("outpost store also listening on ")
        .expect("the plain listener's line");
    let s3 = sdk_client(&store, &ca);
    let b = store.bucket(&s3, "sectr").await;
    put_bytes(&s3, &b, "k", b"secret".to_vec()).await;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
        {{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*"}},
        {{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::{b}/*",
          "Condition":{{"Bool":{{"aws:SecureTransport":"false"}}}}}}]}}"#
    );
    s3.put_bucket_policy()
        .bucket(&b)
        .policy(policy)
        .send()
        .await
        .unwrap();

    let over_tls = reqwest_client(&ca)
        .get(format!("{}/{b}/k", store.url))
        .send()
        .await
        .unwrap();
    assert_eq!(over_tls.status(), 200, "anonymous over https");
    let plain = reqwest::get(format!("{plain_url}/{b}/k")).await.unwrap();
    assert_eq!(plain.status(), 403, "anonymous over plain http");
}
