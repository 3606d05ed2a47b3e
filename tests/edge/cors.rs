//! CORS through the edge: preflights answered at the S3 face and at sites by the rules the edge
//! learnt from the store, `Access-Control-*` worked out per request (a cached object seen by
//! two Origins gives each its own answer), and the edge's kept answers replaced within its
//! bound (5 s of its clock) after the rules change at the store.

use crate::common::cors::*;
use crate::common::*;

#[tokio::test]
async fn the_s3_face_answers_preflights_and_each_origin_gets_its_own_headers_from_one_cached_object()
 {
    let pair = EdgePair::start();
    let (store, edge) = (&pair.store, &pair.edge);
    let s3 = store.client();
    let b = store.bucket(&s3, "ecors").await;
    let put = put_bytes(&s3, &b, "a.txt", b"hello".to_vec()).await;
    put_rules(&s3, &b, app_rules()).await;
    let object = format!("/{b}/a.txt");

    let r = preflight(edge, &object, Some(APP), "PUT", "Content-Type").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_app_headers(&r);
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type")
    );
    let r = preflight(edge, &object, Some(EVIL), "GET", "").await;
    r.assert_error(403, "AccessForbidden");
    assert_no_cors(&r);
    preflight(edge, &object, None, "GET", "")
        .await
        .assert_error(400, "BadRequest");

    let get = |method: &str, origin: &str| {
        RawRequest::new(method, &object)
            .header("origin", origin)
            .sign(edge)
    };
    let r = get("GET", APP).send(edge).await;
    assert_eq!(
        (r.status, r.header("x-cache")),
        (200, Some("Miss from outpost"))
    );
    assert_app_headers(&r);
    // The same cached answer, to an Origin no rule lets GET: nothing of APP's.
    let r = get("GET", EVIL).send(edge).await;
    assert_eq!(
        (r.status, r.header("x-cache")),
        (200, Some("Hit from outpost"))
    );
    assert_eq!(r.body, b"hello");
    assert_no_cors(&r);
    assert_eq!(r.header("vary"), Some(VARY));
    // Anyone may HEAD (the second rule), from the cache too.
    let r = get("HEAD", EVIL).send(edge).await;
    assert_eq!(
        (r.status, r.header("x-cache")),
        (200, Some("Hit from outpost"))
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let r = get("GET", APP).send(edge).await;
    assert_eq!(r.header("x-cache"), Some("Hit from outpost"));
    assert_app_headers(&r);
    // Without an Origin, from the cache: nothing allowed, but the answer varies by Origin (a
    // browser keeping it must not reuse it for a CORS request).
    let r = RawRequest::new("GET", &object).sign(edge).send(edge).await;
    assert_eq!(r.header("x-cache"), Some("Hit from outpost"));
    assert_no_cors(&r);
    assert_eq!(r.header("vary"), Some(VARY));
    // Errors through the edge: 404, 304, 403 (unsigned: the store's policy decides).
    let r = RawRequest::new("GET", &format!("/{b}/missing"))
        .header("origin", APP)
        .sign(edge)
        .send(edge)
        .await;
    r.assert_error(404, "NoSuchKey");
    assert_app_headers(&r);
    let r = RawRequest::new("GET", &object)
        .header("origin", APP)
        .header("if-none-match", put.e_tag().unwrap())
        .sign(edge)
        .send(edge)
        .await;
    assert_eq!(r.status, 304);
    assert_app_headers(&r);
    let r = RawRequest::new("GET", &object)
        .header("origin", APP)
        .send(edge)
        .await;
    r.assert_error(403, "AccessDenied");
    assert_app_headers(&r);
    // Forwarded operations too (a listing), with the edge's own headers.
    let r = RawRequest::new("GET", &format!("/{b}?list-type=2"))
        .header("origin", EVIL)
        .sign(edge)
        .send(edge)
        .await;
    assert_eq!(r.status, 200);
    assert_no_cors(&r);
    assert_eq!(r.header("vary"), Some(VARY));
}

#[tokio::test]
async fn the_edge_keeps_preflight_answers_until_its_bound_then_sees_the_stores_change() {
    let pair = EdgePair::start();
    let (store, edge) = (&pair.store, &pair.edge);
    let s3 = store.client();
    let b = store.bucket(&s3, "ecors-keep").await;
    put_rules(&s3, &b, app_rules()).await;
    let object = format!("/{b}/k");

    let r = preflight(edge, &object, Some(APP), "GET", "x-amz-date").await;
    assert_eq!(
        (r.status, r.header("x-cache")),
        (200, Some("Miss from outpost"))
    );
    let r = preflight(edge, &object, Some(APP), "GET", "x-amz-date").await;
    assert_eq!(
        (r.status, r.header("x-cache")),
        (200, Some("Hit from outpost"))
    );
    // Other headers asked: another answer, worked out from the rules the edge holds.
    let r = preflight(edge, &object, Some(APP), "GET", "").await;
    assert_eq!(
        (r.status, r.header("x-cache")),
        (200, Some("Miss from outpost"))
    );

    // Now only EVIL may GET. The store says so at once; the edge within its bound.
    let evil_only = aws_sdk_s3::types::CorsConfiguration::builder()
        .cors_rules(
            aws_sdk_s3::types::CorsRule::builder()
                .allowed_origins(EVIL)
                .allowed_methods("GET")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    put_rules(&s3, &b, evil_only).await;
    preflight(store, &object, Some(APP), "GET", "x-amz-date")
        .await
        .assert_error(403, "AccessForbidden");
    let r = preflight(edge, &object, Some(APP), "GET", "x-amz-date").await;
    assert_eq!(
        (r.status, r.header("x-cache")),
        (200, Some("Hit from outpost")),
        "kept"
    );
    // Real answers follow the same kept rules, even relayed from a store that says otherwise.
    let list = |origin: &str| {
        RawRequest::new("GET", &format!("/{b}?list-type=2"))
            .header("origin", origin)
            .sign(edge)
    };
    let r = list(EVIL).send(edge).await;
    assert_eq!(r.status, 200);
    assert_no_cors(&r);
    assert_app_headers(&list(APP).send(edge).await);

    edge.advance_clock(5).await;
    let r = preflight(edge, &object, Some(APP), "GET", "x-amz-date").await;
    r.assert_error(403, "AccessForbidden");
    let r = preflight(edge, &object, Some(EVIL), "GET", "").await;
    assert_eq!(
        (r.status, r.header("x-cache")),
        (200, Some("Miss from outpost"))
    );
    assert_eq!(r.header("access-control-allow-origin"), Some(EVIL));
    let r = list(EVIL).send(edge).await;
    assert_eq!(r.header("access-control-allow-origin"), Some(EVIL));

    // Deleted at the store: after the bound, CORS is off at the edge too.
    s3.delete_bucket_cors().bucket(&b).send().await.unwrap();
    edge.advance_clock(5).await;
    let r = preflight(edge, &object, Some(EVIL), "GET", "").await;
    r.assert_error(403, "AccessForbidden");
    assert_eq!(
        r.xml("Message").as_deref(),
        Some("CORSResponse: CORS is not enabled for this bucket.")
    );
    let r = preflight(edge, "/ecors-no-such-bucket/k", Some(EVIL), "GET", "").await;
    r.assert_error(403, "AccessForbidden");
    assert_eq!(
        r.xml("Message").as_deref(),
        Some("CORSResponse: Bucket not found")
    );
}

#[tokio::test]
async fn sites_answer_preflights_and_carry_the_rules_headers() {
    let b = unique_bucket("ecors-site");
    let pair = EdgePair::start_with(&format!(
        "[[edge.distribution]]\nhosts = [\"cdn.example.test\"]\nbucket = \"{b}\"\n"
    ));
    let (store, edge) = (&pair.store, &pair.edge);
    let s3 = store.client();
    s3.create_bucket().bucket(&b).send().await.unwrap();
    put_bytes(&s3, &b, "app.js", b"console.log(1)".to_vec()).await;
    put_rules(&s3, &b, app_rules()).await;

    let r = RawRequest::new("OPTIONS", "/app.js")
        .host("cdn.example.test")
        .header("origin", APP)
        .header("access-control-request-method", "GET")
        .send(edge)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_app_headers(&r);
    let site_get = |path: &str, origin: &str| {
        RawRequest::new("GET", path)
            .host("cdn.example.test")
            .header("origin", origin)
    };
    let r = site_get("/app.js", APP).send(edge).await;
    assert_eq!(r.status, 200);
    assert_app_headers(&r);
    let r = site_get("/app.js", EVIL).send(edge).await;
    assert_eq!(
        (r.status, r.header("x-cache")),
        (200, Some("Hit from outpost"))
    );
    assert_no_cors(&r);
    let r = site_get("/missing.js", APP).send(edge).await;
    assert_eq!(r.status, 404);
    assert_app_headers(&r);
    // Without an Origin: the answer still varies by it, compressed or not.
    s3.put_object()
        .bucket(&b)
        .key("big.js")
        .content_type("text/javascript")
        .body(body("console.log(1);\n".repeat(200)))
        .send()
        .await
        .unwrap();
    for (accept, encoding) in [("identity", None), ("gzip", Some("gzip"))] {
        let r = RawRequest::new("GET", "/big.js")
            .host("cdn.example.test")
            .header("accept-encoding", accept)
            .send(edge)
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), encoding);
        assert_no_cors(&r);
        let vary: Vec<&str> = r
            .headers
            .iter()
            .filter(|(k, _)| k == "vary")
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(vary.contains(&VARY), "{accept}: {vary:?}");
    }
}

#[tokio::test]
async fn a_change_made_through_the_edge_is_seen_there_at_once() {
    let pair = EdgePair::start();
    let edge = &pair.edge;
    let s3 = edge.client();
    let b = edge.bucket(&s3, "ecors-via").await;
    let object = format!("/{b}/k");
    // Learnt (and kept) as "no rules" before there are any.
    let r = preflight(edge, &object, Some(APP), "GET", "").await;
    r.assert_error(403, "AccessForbidden");
    put_rules(&s3, &b, app_rules()).await;
    let r = preflight(edge, &object, Some(APP), "GET", "").await;
    assert_eq!(
        (r.status, r.header("x-cache")),
        (200, Some("Miss from outpost"))
    );
    assert_eq!(
        preflight(edge, &object, Some(APP), "GET", "")
            .await
            .header("x-cache"),
        Some("Hit from outpost")
    );
    s3.delete_bucket_cors().bucket(&b).send().await.unwrap();
    let r = preflight(edge, &object, Some(APP), "GET", "").await;
    r.assert_error(403, "AccessForbidden");
    assert_eq!(
        r.xml("Message").as_deref(),
        Some("CORSResponse: CORS is not enabled for this bucket.")
    );
}

/// Whether a bucket's answers vary by Origin is kept with each cached object (the store's
/// `Vary`): an edge following the store's feed drops the bucket's entries when its rules
/// change, so an object cached before the bucket had rules does not keep answering without
/// `Vary` (nor after they are deleted, with it).
#[tokio::test]
async fn a_change_of_rules_at_the_store_reaches_the_vary_of_objects_the_edge_holds() {
    let store = TestStore::start();
    let edge = crate::feed::edge_for(&store.url, "");
    crate::feed::following(&edge).await;
    let s3 = store.client();
    let b = store.bucket(&s3, "ecors-feed").await;
    put_bytes(&s3, &b, "a.txt", b"hello".to_vec()).await;
    crate::feed::cached(&edge, &b, "a.txt", true, b"hello").await;
    let vary_until = async |want: Option<&str>, what: &str| {
        let started = std::time::Instant::now();
        loop {
            let r = RawRequest::new("GET", &format!("/{b}/a.txt"))
                .sign(&edge)
                .send(&edge)
                .await;
            assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
            assert_no_cors(&r);
            if r.header("vary") == want {
                return;
            }
            assert!(
                started.elapsed() < crate::feed::DEADLINE,
                "{what}: the edge still answers Vary {:?} ({:?})",
                r.header("vary"),
                r.header("x-cache")
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    vary_until(None, "no rules").await;
    put_rules(&s3, &b, app_rules()).await;
    vary_until(Some(VARY), "rules given").await;
    s3.delete_bucket_cors().bucket(&b).send().await.unwrap();
    vary_until(None, "rules deleted").await;
}
