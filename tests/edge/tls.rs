//! HTTPS at the edge (issue 12): the S3 face over TLS (uploads relayed, reads cached, over h2),
//! a site over h2, and the URLs an answer names over TLS: Complete's Location and website
//! redirects keep `https`.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;

use crate::common::tls::{local_ca, reqwest_client, sdk_client};
use crate::common::*;

fn https_edge(
    store: &TestStore,
    toml: &str,
) -> (TestStore, tempfile::TempDir, outpost_store::tls::LocalCa) {
    let dir = tempfile::tempdir().unwrap();
    let ca = local_ca(dir.path());
    let opts = StoreOptions::default()
        .env(
            "OUTPOST_EDGE_TLS_CERT",
            &ca.files.cert.display().to_string(),
        )
        .env("OUTPOST_EDGE_TLS_KEY", &ca.files.key.display().to_string())
        .config(toml);
    let edge = TestStore::start_edge(&[store], opts);
    assert!(edge.url.starts_with("https://"), "{}", edge.url);
    (edge, dir, ca)
}

#[tokio::test]
async fn uploads_and_cache_hits_through_an_https_edge_over_h2() {
    let (store, plain, b) = TestStore::with_bucket("edge-tls").await;
    let (edge, _dir, ca) = https_edge(&store, "[edge]\n");
    let s3 = sdk_client(&edge, &ca);

    let parts = [random_bytes(5 * MIB, 1), random_bytes(MIB + 3, 2)];
    let upload = start_upload(&s3, &b, "big").await;
    let refs = [parts[0].as_slice(), parts[1].as_slice()];
    let uploaded = upload_parts(&s3, &b, "big", &upload, &refs).await;
    let done = complete_upload(&s3, &b, "big", &upload, uploaded).await;
    let location = done.location().unwrap_or_default();
    assert!(
        location.starts_with("https://"),
        "Location over TLS: {location}"
    );
    let whole = refs.concat();
    assert_eq!(object_bytes(&plain, &b, "big").await, whole, "at the store");

    let url = s3
        .get_object()
        .bucket(&b)
        .key("big")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .unwrap()
        .uri()
        .to_string();
    let client = reqwest_client(&ca);
    for expected in ["Miss from outpost", "Hit from outpost"] {
        let answer = client.get(&url).send().await.unwrap();
        assert_eq!(answer.version(), reqwest::Version::HTTP_2);
        assert_eq!(answer.headers()["x-cache"], expected);
        assert!(answer.bytes().await.unwrap() == whole);
    }
}

#[tokio::test]
async fn a_site_over_h2_keeps_https_in_its_redirects() {
    let (store, s3, b) = TestStore::with_bucket("site-tls").await;
    let (edge, _dir, ca) = https_edge(
        &store,
        &format!(
            "[edge]\n[[edge.distribution]]\nhosts = [\"localhost\"]\nbucket = \"{b}\"\nwebsite = true\n"
        ),
    );
    let rule = aws_sdk_s3::types::RoutingRule::builder()
        .condition(
            aws_sdk_s3::types::Condition::builder()
                .key_prefix_equals("old/")
                .build(),
        )
        .redirect(
            aws_sdk_s3::types::Redirect::builder()
                .replace_key_prefix_with("new/")
                .build(),
        )
        .build();
    let index = aws_sdk_s3::types::IndexDocument::builder()
        .suffix("index.html")
        .build()
        .unwrap();
    let website = aws_sdk_s3::types::WebsiteConfiguration::builder()
        .index_document(index)
        .routing_rules(rule)
        .build();
    s3.put_bucket_website()
        .bucket(&b)
        .website_configuration(website)
        .send()
        .await
        .unwrap();
    put_bytes(&s3, &b, "index.html", b"home".to_vec()).await;

    let site = format!("https://localhost:{}", edge.port);
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&ca.ca).unwrap()).unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let home = client.get(format!("{site}/")).send().await.unwrap();
    assert_eq!(home.version(), reqwest::Version::HTTP_2);
    assert_eq!(home.status(), 200);
    assert_eq!(home.text().await.unwrap(), "home");
    let moved = client
        .get(format!("{site}/old/x.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 301);
    assert_eq!(moved.headers()["location"], format!("{site}/new/x.html"));
}

#[tokio::test]
async fn https_origins_are_verified_and_a_bad_certificate_fails_over() {
    let (good_dir, bad_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (trusted, untrusted) = (local_ca(good_dir.path()), local_ca(bad_dir.path()));
    let bad = TestStore::start_with(crate::common::tls::store_options(&untrusted));
    let good = TestStore::start_with(crate::common::tls::store_options(&trusted));
    let s3 = sdk_client(&good, &trusted);
    let b = good.bucket(&s3, "origin-tls").await;
    put_bytes(&s3, &b, "k", b"over tls".to_vec()).await;

    let edge = TestStore::start_edge(
        &[&bad, &good],
        StoreOptions::default().config(&format!(
            "[edge]\norigin_ca_file = \"{}\"\n",
            trusted.ca.display()
        )),
    );
    let through = edge.client();
    assert_eq!(object_bytes(&through, &b, "k").await, b"over tls");
    let log = edge.stderr();
    assert!(
        log.contains(&bad.url) && log.contains("certificate"),
        "no clear line about the primary's certificate:\n{log}"
    );
}
