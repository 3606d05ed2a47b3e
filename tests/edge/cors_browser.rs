//! CORS in a real browser (headless Chromium): a page from an origin the bucket's rules allow
//! reads an object through the edge's S3 face and uploads with a presigned PUT (preflight and
//! all); a page from another origin is blocked on both, and its upload never reaches the store.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CorsConfiguration, CorsRule};

use crate::common::browser::{PageServer, dump_dom, element_text};
use crate::common::cors::put_rules;
use crate::common::*;
use crate::feed::make_public;

/// A page that GETs `get_url`, then PUTs a text to `put_url`, and writes
/// `get=STATUS:BODY put=STATUS:ETAG` into `#out` (`blocked` for a request the browser refused).
fn page(get_url: &str, put_url: &str) -> String {
    format!(
        r#"<!doctype html><html><body><pre id="out">pending</pre><script>
const out = document.getElementById("out");
async function run() {{
  let get = "blocked", put = "blocked";
  try {{
    const r = await fetch({get_url:?});
    get = r.status + ":" + await r.text();
  }} catch (e) {{}}
  try {{
    const r = await fetch({put_url:?}, {{ method: "PUT", body: "uploaded by a browser" }});
    put = r.status + ":" + r.headers.get("ETag");
  }} catch (e) {{}}
  out.textContent = "get=" + get + " put=" + put;
}}
run();
</script></body></html>"#
    )
}

#[tokio::test]
async fn a_page_reads_and_uploads_through_the_edge_and_a_page_from_elsewhere_is_blocked() {
    let pair = EdgePair::start();
    let (store, edge) = (&pair.store, &pair.edge);
    let s3 = store.client();
    let b = store.bucket(&s3, "ecors-browser").await;
    put_bytes(&s3, &b, "hello.txt", b"hello from outpost".to_vec()).await;
    let allowed = PageServer::start().await;
    let elsewhere = PageServer::start().await;
    let rules = CorsConfiguration::builder()
        .cors_rules(
            CorsRule::builder()
                .allowed_origins(&allowed.url)
                .allowed_methods("GET")
                .allowed_methods("PUT")
                .allowed_headers("*")
                .expose_headers("ETag")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    put_rules(&s3, &b, rules).await;

    // URLs signed for the edge, as an application server would hand them to its page.
    let presigner = edge.client_when_required();
    let expires = || PresigningConfig::expires_in(Duration::from_secs(600)).unwrap();
    let get_url = presigner
        .get_object()
        .bucket(&b)
        .key("hello.txt")
        .presigned(expires())
        .await
        .unwrap();
    let put_url = |key: &str| {
        presigner
            .put_object()
            .bucket(&b)
            .key(key)
            .presigned(expires())
    };
    let uploaded = put_url("from-browser.txt").await.unwrap();
    let blocked = put_url("from-elsewhere.txt").await.unwrap();
    allowed.show(&page(get_url.uri(), uploaded.uri()));
    elsewhere.show(&page(get_url.uri(), blocked.uri()));

    let dom = dump_dom(&allowed.url).await;
    let want = format!(
        "get=200:hello from outpost put=200:{}",
        etag_of(b"uploaded by a browser")
    );
    assert_eq!(
        element_text(&dom, "out").as_deref(),
        Some(want.as_str()),
        "{dom}"
    );
    assert_eq!(
        object_bytes(&s3, &b, "from-browser.txt").await,
        b"uploaded by a browser"
    );

    let dom = dump_dom(&elsewhere.url).await;
    assert_eq!(
        element_text(&dom, "out").as_deref(),
        Some("get=blocked put=blocked"),
        "{dom}"
    );
    let missing = s3
        .head_object()
        .bucket(&b)
        .key("from-elsewhere.txt")
        .send()
        .await;
    assert_eq!(
        sdk_err(missing).0,
        404,
        "the blocked upload reached the store"
    );
}

/// A browser keeps an answer it got without CORS (here a `no-cors` fetch, as an `<img>` or a
/// `<script>` without `crossorigin` makes) and may hand it to a later CORS request for the same
/// URL: unless the answer said it varies by Origin, that request is blocked although the rules
/// allow it.
#[tokio::test]
async fn a_kept_answer_to_a_request_without_cors_does_not_block_a_later_cors_read() {
    let pair = EdgePair::start();
    let (store, edge) = (&pair.store, &pair.edge);
    let s3 = store.client();
    let b = store.bucket(&s3, "ecors-kept").await;
    s3.put_object()
        .bucket(&b)
        .key("kept.txt")
        .cache_control("max-age=600")
        .body(body(b"kept by the browser".to_vec()))
        .send()
        .await
        .unwrap();
    let page = PageServer::start().await;
    let rules = CorsConfiguration::builder()
        .cors_rules(
            CorsRule::builder()
                .allowed_origins(&page.url)
                .allowed_methods("GET")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    put_rules(&s3, &b, rules).await;
    // Readable by anyone, as a static site's assets are: one URL for both fetches. (Plain
    // text: Chromium does not keep a no-cors answer that looks like JSON, it blocks it.)
    make_public(&s3, &b).await;
    let url = format!("{}/{b}/kept.txt", edge.url);
    page.show(&format!(
        r#"<!doctype html><html><body><pre id="out">pending</pre><script>
const out = document.getElementById("out");
async function run() {{
  let first = "failed", then = "blocked";
  try {{ first = (await fetch({url:?}, {{ mode: "no-cors" }})).type; }} catch (e) {{}}
  try {{
    const r = await fetch({url:?});
    then = r.status + ":" + await r.text();
  }} catch (e) {{}}
  out.textContent = first + " " + then;
}}
run();
</script></body></html>"#
    ));
    let dom = dump_dom(&page.url).await;
    assert_eq!(
        element_text(&dom, "out").as_deref(),
        Some("opaque 200:kept by the browser"),
        "{dom}"
    );
}
