//! A certificate per distribution (issue 12): each `[[edge.distribution]]` may name its own
//! `tls_cert`/`tls_key`, served to clients that ask for one of its hosts by SNI; every other
//! name (or none) gets the edge's pair; a distribution's pair reloads on SIGHUP like the
//! default one.

use std::time::{Duration, Instant};

use outpost_store::tls::LocalCa;

use crate::common::tls::{edge_refusal, leaf_der, local_ca, served_leaf};
use crate::common::*;

fn named_ca(dir: &std::path::Path, name: &str) -> LocalCa {
    LocalCa::in_dir_for(dir, &[name]).expect("make a CA")
}

fn distribution(host: &str, bucket: &str, ca: Option<&LocalCa>) -> String {
    let pair = ca.map_or(String::new(), |ca| {
        format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            ca.files.cert.display(),
            ca.files.key.display()
        )
    });
    format!("[[edge.distribution]]\nhosts = [\"{host}\"]\nbucket = \"{bucket}\"\n{pair}")
}

#[tokio::test]
async fn each_distribution_serves_its_own_certificate_by_sni() {
    let (store, s3, b) = TestStore::with_bucket("sni").await;
    put_bytes(&s3, &b, "page.html", b"a page".to_vec()).await;
    let dir = tempfile::tempdir().unwrap();
    let default = local_ca(&dir.path().join("default"));
    let a = named_ca(&dir.path().join("a"), "a.test");
    let b_ca = named_ca(&dir.path().join("b"), "b.test");
    let toml = format!(
        "[edge]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n{}{}{}",
        default.files.cert.display(),
        default.files.key.display(),
        distribution("a.test", &b, Some(&a)),
        distribution("B.Test", &b, Some(&b_ca)),
        distribution("c.test", &b, None),
    );
    let edge = TestStore::start_edge(&[&store], StoreOptions::default().config(&toml));

    let (a_leaf, b_leaf) = (leaf_der(&a.files.cert), leaf_der(&b_ca.files.cert));
    let default_leaf = leaf_der(&default.files.cert);
    assert!(served_leaf(edge.port, "a.test").await == a_leaf, "a.test");
    assert!(served_leaf(edge.port, "b.test").await == b_leaf, "b.test");
    for other in ["c.test", "unknown.test", "localhost"] {
        assert!(
            served_leaf(edge.port, other).await == default_leaf,
            "{other} did not get the edge's certificate"
        );
    }

    // A client that trusts only a.test's CA reads the site, verified, over h2.
    let trusting_a = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&a.ca).unwrap()).unwrap(),
        )
        .resolve("a.test", ([127, 0, 0, 1], edge.port).into())
        .build()
        .unwrap();
    let page = trusting_a
        .get(format!("https://a.test:{}/page.html", edge.port))
        .send()
        .await
        .unwrap();
    assert_eq!(page.version(), reqwest::Version::HTTP_2);
    assert_eq!(page.text().await.unwrap(), "a page");
}

#[tokio::test]
async fn a_distributions_certificate_reloads_on_sighup() {
    let (store, _s3, b) = TestStore::with_bucket("sni-reload").await;
    let dir = tempfile::tempdir().unwrap();
    let default = local_ca(&dir.path().join("default"));
    let a = named_ca(&dir.path().join("a"), "a.test");
    let next = named_ca(&dir.path().join("next"), "a.test");
    let toml = format!(
        "[edge]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n{}",
        default.files.cert.display(),
        default.files.key.display(),
        distribution("a.test", &b, Some(&a)),
    );
    let edge = TestStore::start_edge(&[&store], StoreOptions::default().config(&toml));
    assert!(served_leaf(edge.port, "a.test").await == leaf_der(&a.files.cert));

    std::fs::copy(&next.files.key, &a.files.key).unwrap();
    std::fs::copy(&next.files.cert, &a.files.cert).unwrap();
    edge.signal_hangup();
    let wanted = leaf_der(&next.files.cert);
    let deadline = Instant::now() + Duration::from_secs(20);
    while served_leaf(edge.port, "a.test").await != wanted {
        assert!(Instant::now() < deadline, "the new pair was never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let default_leaf = leaf_der(&default.files.cert);
    assert!(served_leaf(edge.port, "other.test").await == default_leaf);
}

#[test]
fn a_distribution_pair_without_the_edges_tls_listener_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let a = named_ca(dir.path(), "a.test");
    let err = edge_refusal(&format!(
        "[edge]\n{}",
        distribution("a.test", "b", Some(&a))
    ));
    assert!(err.contains("needs the edge's TLS listener"), "{err}");
}
