//! Certificate rotation under load (issue 12): while clients keep requesting a site through
//! an https edge, on kept-alive connections (HTTP/2 and HTTP/1.1) and on fresh ones, the
//! certificate files are replaced and SIGHUP sent. No request fails; once one new connection
//! has seen the new certificate every later one does; the kept-alive connections go on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use outpost_store::tls::LocalCa;

use crate::common::tls::{leaf_der, local_ca};
use crate::common::*;

/// Clients trusting both CAs, pinned to 127.0.0.1 for `localhost`.
fn client(cas: &[&LocalCa], http1: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .tls_info(true)
        .timeout(Duration::from_secs(30))
        .resolve("localhost", ([127, 0, 0, 1], 0).into());
    for ca in cas {
        let pem = std::fs::read(&ca.ca).unwrap();
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    if http1 {
        builder = builder.http1_only();
    }
    builder.build().unwrap()
}

/// One GET of the page; the leaf certificate of the connection it went over.
async fn fetch(client: &reqwest::Client, url: &str, page: &[u8]) -> Result<Vec<u8>, String> {
    let answer = client.get(url).send().await.map_err(|e| format!("{e:?}"))?;
    let leaf = answer
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    if answer.status() != 200 {
        return Err(format!("status {}", answer.status()));
    }
    let body = answer.bytes().await.map_err(|e| format!("{e:?}"))?;
    if body != page {
        return Err("the page differs".into());
    }
    Ok(leaf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_under_load_fails_no_request_and_new_connections_get_the_new_certificate() {
    let (store, s3, b) = TestStore::with_bucket("rotate-load").await;
    let page = random_bytes(16 * 1024, 7);
    put_bytes(&s3, &b, "page.bin", page.clone()).await;
    let (dir, next_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (first, next) = (local_ca(dir.path()), local_ca(next_dir.path()));
    let toml = format!(
        "[edge]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n[[edge.distribution]]\nhosts = [\"localhost\"]\nbucket = \"{b}\"\n",
        first.files.cert.display(),
        first.files.key.display()
    );
    let edge = TestStore::start_edge(&[&store], StoreOptions::default().config(&toml));
    let url = format!("https://localhost:{}/page.bin", edge.port);
    let (old_leaf, new_leaf) = (leaf_der(&first.files.cert), leaf_der(&next.files.cert));

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    // Kept-alive: one client each (one h2 connection, or a pool of h1 ones), two tasks on it.
    for http1 in [false, true] {
        let kept = client(&[&first, &next], http1);
        for _ in 0..2 {
            let (kept, url, page) = (kept.clone(), url.clone(), page.clone());
            let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
            workers.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    seen.push((Instant::now(), false, fetch(&kept, &url, &page).await));
                    done.fetch_add(1, Ordering::Relaxed);
                }
                seen
            }));
        }
    }
    // Fresh: a new client, so a new connection and a full handshake, per request.
    for _ in 0..3 {
        let (first, next) = (first.clone(), next.clone());
        let (url, page) = (url.clone(), page.clone());
        let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let at = Instant::now();
                let fresh = client(&[&first, &next], false);
                seen.push((at, true, fetch(&fresh, &url, &page).await));
                done.fetch_add(1, Ordering::Relaxed);
            }
            seen
        }));
    }

    let until = |n: usize| {
        let done = Arc::clone(&done);
        async move {
            while done.load(Ordering::Relaxed) < n {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "the load stalled"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    until(50).await;
    // Key first, then chain (a reload in between sees a mismatched pair and keeps the old).
    std::fs::copy(&next.files.key, &first.files.key).unwrap();
    std::fs::copy(&next.files.cert, &first.files.cert).unwrap();
    edge.signal_hangup();
    let rotated = Instant::now();
    let probe = |fresh: reqwest::Client| {
        let url = url.clone();
        let page = page.clone();
        async move { fetch(&fresh, &url, &page).await.unwrap() }
    };
    while probe(client(&[&first, &next], false)).await != new_leaf {
        assert!(rotated.elapsed() < Duration::from_secs(20), "never rotated");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let switched = Instant::now();
    let after = done.load(Ordering::Relaxed);
    until(after + 100).await;
    stop.store(true, Ordering::Relaxed);

    let mut results = Vec::new();
    for worker in workers {
        results.extend(worker.await.unwrap());
    }
    let failures: Vec<_> = results
        .iter()
        .filter_map(|(_, _, r)| r.as_ref().err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let fresh_after: Vec<_> = results
        .iter()
        .filter(|(at, fresh, _)| *fresh && *at > switched)
        .map(|(_, _, r)| r.as_ref().unwrap())
        .collect();
    assert!(
        !fresh_after.is_empty(),
        "no fresh connection after the switch"
    );
    assert!(
        fresh_after.iter().all(|leaf| **leaf == new_leaf),
        "a new connection got the old certificate after the switch"
    );
    let kept_after = results
        .iter()
        .filter(|(at, fresh, _)| !*fresh && *at > switched)
        .count();
    assert!(kept_after > 0, "the kept-alive connections stopped");
    // The kept-alive connections were opened before the switch and never replaced.
    let kept_old = results
        .iter()
        .filter(|(_, fresh, _)| !*fresh)
        .all(|(_, _, r)| *r.as_ref().unwrap() == old_leaf);
    assert!(
        kept_old,
        "a kept-alive connection was dropped and opened again"
    );
    eprintln!(
        "{} requests ({} after the switch on kept-alive connections, {} fresh)",
        results.len(),
        kept_after,
        fresh_after.len()
    );
}
