//! The browser side of the edge: distributions by Host, static websites, compression.

use crate::common::*;

/// An anonymous browser GET of `path` on the edge with `Host: host`.
async fn browse(
    edge: &TestStore,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> raw::RawResponse {
    let mut req = RawRequest::new("GET", path).host(host);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    req.send(edge).await
}

async fn put_page(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body_text: &str) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("text/html")
        .body(body(body_text.as_bytes().to_vec()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_website_with_index_error_and_redirects() {
    let (store, s3, b) = TestStore::with_bucket("site").await;
    let edge = TestStore::start_edge(
        &[&store],
        StoreOptions::default().config(&format!(
            "[edge]\n[[edge.distribution]]\nhosts = [\"www.example.test\"]\nbucket = \"{b}\"\nwebsite = true\n"
        )),
    );
    let website = aws_sdk_s3::types::WebsiteConfiguration::builder()
        .index_document(
            aws_sdk_s3::types::IndexDocument::builder()
                .suffix("index.html")
                .build()
                .unwrap(),
        )
        .error_document(
            aws_sdk_s3::types::ErrorDocument::builder()
                .key("404.html")
                .build()
                .unwrap(),
        )
        .routing_rules(
            aws_sdk_s3::types::RoutingRule::builder()
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
                .build(),
        )
        .build();
    s3.put_bucket_website()
        .bucket(&b)
        .website_configuration(website)
        .send()
        .await
        .unwrap();
    let got = s3.get_bucket_website().bucket(&b).send().await.unwrap();
    assert_eq!(got.index_document().map(|i| i.suffix()), Some("index.html"));

    put_page(&s3, &b, "index.html", "home").await;
    put_page(&s3, &b, "docs/index.html", "docs home").await;
    put_page(&s3, &b, "404.html", "not here").await;
    s3.put_object()
        .bucket(&b)
        .key("moved.html")
        .website_redirect_location("/docs/")
        .body(body(""))
        .send()
        .await
        .unwrap();

    let host = "www.example.test";
    let r = browse(&edge, host, "/", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "home"));
    assert_eq!(r.header("x-cache"), Some("Miss from outpost"));
    assert_eq!(
        browse(&edge, host, "/", &[]).await.header("x-cache"),
        Some("Hit from outpost")
    );
    let r = browse(&edge, host, "/docs/", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "docs home"));
    let r = browse(&edge, host, "/docs", &[]).await;
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("/docs/")),
        "a directory without its slash"
    );
    let r = browse(&edge, host, "/nothing.html", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (404, "not here"));
    assert_eq!(r.header("content-type"), Some("text/html"));
    let r = browse(&edge, host, "/old/page.html", &[]).await;
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some(format!("http://{host}/new/page.html").as_str())
    );
    let r = browse(&edge, host, "/moved.html", &[]).await;
    assert_eq!((r.status, r.header("location")), (301, Some("/docs/")));
    let r = RawRequest::new("PUT", "/x")
        .host(host)
        .body("x")
        .send(&edge)
        .await;
    r.assert_error(405, "MethodNotAllowed");

    // Requests for other hosts still speak the S3 API.
    assert_eq!(
        object_bytes(&edge.client(), &b, "index.html").await,
        b"home"
    );
}

#[tokio::test]
async fn distributions_pick_behaviours_by_path() {
    let (store, s3, b) = TestStore::with_bucket("cdn").await;
    let edge = TestStore::start_edge(
        &[&store],
        StoreOptions::default().config(&format!(
            r#"[edge]
test_clock = true
# TTLs are what this test is about, not the change feed.
feed = false
[[edge.distribution]]
hosts = ["cdn.example.test"]
bucket = "{b}"
[[edge.distribution.behavior]]
path = "/static/*"
min_ttl_secs = 3600
default_ttl_secs = 3600
query_keys = ["v"]
"#
        )),
    );
    for key in ["static/app.js", "page.html"] {
        s3.put_object()
            .bucket(&b)
            .key(key)
            .cache_control("max-age=10")
            .body(body("v1"))
            .send()
            .await
            .unwrap();
    }
    let host = "cdn.example.test";
    for path in ["/static/app.js?v=1", "/page.html"] {
        assert_eq!(browse(&edge, host, path, &[]).await.text(), "v1");
    }
    for key in ["static/app.js", "page.html"] {
        put_bytes(&s3, &b, key, "v2").await;
    }
    edge.advance_clock(60).await;
    // The static behaviour's minimum TTL (1 h) outranks the origin's max-age=10.
    let r = browse(&edge, host, "/static/app.js?v=1&utm=mail", &[]).await;
    assert_eq!(
        (r.text().as_str(), r.header("x-cache")),
        ("v1", Some("Hit from outpost"))
    );
    let r = browse(&edge, host, "/static/app.js?v=2", &[]).await;
    assert_eq!(r.text(), "v2", "v is part of the cache key");
    assert_eq!(
        browse(&edge, host, "/page.html", &[]).await.text(),
        "v2",
        "default behaviour"
    );
    assert_eq!(browse(&edge, host, "/missing", &[]).await.status, 404);
}

#[tokio::test]
async fn compressible_content_is_compressed_for_clients_that_accept_it() {
    let (store, s3, b) = TestStore::with_bucket("gz").await;
    let edge = TestStore::start_edge(
        &[&store],
        StoreOptions::default().config(&format!(
            "[edge]\n[[edge.distribution]]\nhosts = [\"gz.example.test\"]\nbucket = \"{b}\"\n"
        )),
    );
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(200);
    s3.put_object()
        .bucket(&b)
        .key("story.txt")
        .content_type("text/plain")
        .body(body(text.clone()))
        .send()
        .await
        .unwrap();
    let host = "gz.example.test";
    for (accept, encoding) in [("gzip, br", "br"), ("gzip", "gzip")] {
        let r = browse(&edge, host, "/story.txt", &[("accept-encoding", accept)]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), Some(encoding));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert!(
            r.body.len() < text.len() / 10,
            "{encoding}: {} bytes",
            r.body.len()
        );
        assert_eq!(decompress(encoding, &r.body), text.as_bytes());
    }
    let r = browse(&edge, host, "/story.txt", &[]).await;
    assert_eq!(
        (r.header("content-encoding"), r.body.len()),
        (None, text.len())
    );
    let r = browse(
        &edge,
        host,
        "/story.txt",
        &[("accept-encoding", "gzip"), ("range", "bytes=0-9")],
    )
    .await;
    assert_eq!(
        (r.status, r.header("content-encoding")),
        (206, None),
        "ranges are never compressed"
    );
}

fn decompress(encoding: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    match encoding {
        "gzip" => flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap(),
        _ => brotli::Decompressor::new(data, 4096)
            .read_to_end(&mut out)
            .unwrap(),
    };
    out
}

#[tokio::test]
async fn every_bucket_under_the_website_domain() {
    let store = TestStore::start();
    let s3 = store.client();
    let moved = store.bucket(&s3, "moved").await;
    let plain = store.bucket(&s3, "plain").await;
    let edge = TestStore::start_edge(
        &[&store],
        StoreOptions::default().config("[edge]\nwebsite_domain = \"sites.test\"\n"),
    );
    let redirect_all = aws_sdk_s3::types::WebsiteConfiguration::builder()
        .redirect_all_requests_to(
            aws_sdk_s3::types::RedirectAllRequestsTo::builder()
                .host_name("www.example.com")
                .protocol(aws_sdk_s3::types::Protocol::Https)
                .build()
                .unwrap(),
        )
        .build();
    s3.put_bucket_website()
        .bucket(&moved)
        .website_configuration(redirect_all)
        .send()
        .await
        .unwrap();
    let r = browse(&edge, &format!("{moved}.sites.test"), "/a/b.html", &[]).await;
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some("https://www.example.com/a/b.html")
    );

    // A bucket without a website configuration is not a website.
    put_page(&s3, &plain, "index.html", "x").await;
    let r = browse(&edge, &format!("{plain}.sites.test"), "/", &[]).await;
    r.assert_error(404, "NoSuchWebsiteConfiguration");
}
