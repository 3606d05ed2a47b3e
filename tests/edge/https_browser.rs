//! Headless Chromium loads a site through an https edge (issue 12), with the test CA's
//! certificate trusted by its key (`--ignore-certificate-errors-spki-list`, Chromium's pin of a
//! leaf's SubjectPublicKeyInfo), and the page reports how it arrived:
//! `performance.getEntriesByType('navigation')[0].nextHopProtocol` must be `h2`.

use crate::common::browser::{dump_dom_with, element_text};
use crate::common::tls::local_ca;
use crate::common::*;

/// base64(SHA-256(SubjectPublicKeyInfo)) of the leaf in `cert`, as Chromium's SPKI list wants
/// it (openssl: the test has no X.509 parser of its own).
fn spki_pin(cert: &std::path::Path) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(
            "openssl x509 -in \"$0\" -pubkey -noout | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | base64",
        )
        .arg(cert)
        .output()
        .expect("openssl runs (scripts/test installs it)");
    assert!(out.status.success(), "{out:?}");
    let pin = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(pin.len(), 44, "not a base64 SHA-256: {pin}");
    pin
}

const PAGE: &str = "<!doctype html><pre id=\"proto\">pending</pre><pre id=\"scheme\"></pre><script>\
    const nav = performance.getEntriesByType('navigation')[0];\
    document.getElementById('proto').textContent = nav ? nav.nextHopProtocol : 'no entry';\
    document.getElementById('scheme').textContent = location.protocol;\
    </script>";

#[tokio::test]
async fn chromium_loads_an_https_site_through_the_edge_over_h2() {
    let (store, s3, b) = TestStore::with_bucket("browser-tls").await;
    s3.put_object()
        .bucket(&b)
        .key("index.html")
        .content_type("text/html; charset=utf-8")
        .body(body(PAGE))
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = local_ca(dir.path());
    let toml = format!(
        "[edge]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n[[edge.distribution]]\nhosts = [\"localhost\"]\nbucket = \"{b}\"\n",
        ca.files.cert.display(),
        ca.files.key.display()
    );
    let edge = TestStore::start_edge(&[&store], StoreOptions::default().config(&toml));
    let url = format!("https://localhost:{}/index.html", edge.port);
    let pin = format!(
        "--ignore-certificate-errors-spki-list={}",
        spki_pin(&ca.files.cert)
    );

    let dom = dump_dom_with(&url, &[pin]).await;
    assert_eq!(
        element_text(&dom, "scheme").as_deref(),
        Some("https:"),
        "{dom}"
    );
    assert_eq!(element_text(&dom, "proto").as_deref(), Some("h2"), "{dom}");
}
