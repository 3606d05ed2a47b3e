//! Cache behaviour seen from clients: hits and misses, TTLs, revalidation, collapsing, ranges
//! over slices, invalidation, negative caching, conditional requests.

use crate::common::signed_get as get;
use crate::common::*;

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, data: &[u8], cache_control: &str) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .cache_control(cache_control)
        .body(body(data.to_vec()))
        .send()
        .await
        .expect("put to the store");
}

#[tokio::test]
async fn miss_then_hit_then_expiry_revalidates_with_304() {
    let p = EdgePair::start();
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "ttl").await;
    put(&s3, &b, "page.html", b"<h1>v1</h1>", "max-age=60").await;

    let (data, x, age) = get(&p.edge, &b, "page.html").await;
    assert_eq!(
        (data.as_slice(), x.as_str()),
        (&b"<h1>v1</h1>"[..], "Miss from outpost")
    );
    assert_eq!(age, Some(0));
    let (data, x, _) = get(&p.edge, &b, "page.html").await;
    assert_eq!(
        (data.as_slice(), x.as_str()),
        (&b"<h1>v1</h1>"[..], "Hit from outpost")
    );
    assert_eq!(
        p.store.origin_gets("200").await,
        1.0,
        "one origin GET for two reads"
    );

    p.edge.advance_clock(30).await;
    let (_, x, age) = get(&p.edge, &b, "page.html").await;
    assert_eq!(x, "Hit from outpost");
    assert!(age.unwrap() >= 30, "Age counts the time in cache: {age:?}");

    // Expired: a conditional request, answered 304, renews the entry without a body.
    p.edge.advance_clock(31).await;
    let (data, x, _) = get(&p.edge, &b, "page.html").await;
    assert_eq!(
        (data.as_slice(), x.as_str()),
        (&b"<h1>v1</h1>"[..], "RefreshHit from outpost")
    );
    assert_eq!(p.store.origin_gets("304").await, 1.0);
    assert_eq!(p.store.origin_gets("200").await, 1.0);
    let (_, x, _) = get(&p.edge, &b, "page.html").await;
    assert_eq!(x, "Hit from outpost");

    // Changed at the origin: the next revalidation brings the new body.
    put(&s3, &b, "page.html", b"<h1>v2</h1>", "max-age=60").await;
    let (data, _, _) = get(&p.edge, &b, "page.html").await;
    assert_eq!(
        data, b"<h1>v1</h1>",
        "still fresh: the edge serves its copy"
    );
    p.edge.advance_clock(61).await;
    let (data, x, _) = get(&p.edge, &b, "page.html").await;
    assert_eq!(
        (data.as_slice(), x.as_str()),
        (&b"<h1>v2</h1>"[..], "Miss from outpost")
    );
}

#[tokio::test]
async fn no_store_and_private_are_never_cached() {
    let p = EdgePair::start();
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "nostore").await;
    put(&s3, &b, "a", b"a", "no-store").await;
    put(&s3, &b, "b", b"b", "private, max-age=600").await;
    for key in ["a", "b"] {
        for _ in 0..2 {
            let (data, x, _) = get(&p.edge, &b, key).await;
            assert_eq!(data, key.as_bytes());
            assert_ne!(x, "Hit from outpost", "{key} must not be served from cache");
        }
    }
    assert_eq!(p.store.origin_gets("200").await, 4.0);
}

#[tokio::test]
async fn concurrent_cold_gets_collapse_into_one_origin_request() {
    let p = EdgePair::start();
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "collapse").await;
    let data = random_bytes(9 * MIB + 123, 1);
    put(&s3, &b, "patch.bin", &data, "max-age=3600").await;

    let edge = p.edge.client();
    let reads = (0..100).map(|_| {
        let (edge, b) = (edge.clone(), b.clone());
        tokio::spawn(async move {
            let got = edge
                .get_object()
                .bucket(&b)
                .key("patch.bin")
                .send()
                .await
                .unwrap();
            read_body(got.body).await
        })
    });
    for read in futures::future::join_all(reads).await {
        assert!(read.unwrap() == data, "every reader gets the whole object");
    }
    assert_eq!(
        p.store.origin_gets("200").await,
        1.0,
        "100 concurrent cold GETs make exactly one origin GET"
    );
}

#[tokio::test]
async fn ranged_reads_fetch_only_the_slices_they_need() {
    // 1 MiB slices: a 10 MiB object is ten slices.
    let p = EdgePair::start_with(&format!("slice_bytes = {MIB}"));
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "slices").await;
    let data = random_bytes(10 * MIB, 2);
    put(&s3, &b, "big.iso", &data, "max-age=3600").await;
    let edge = p.edge.client();
    let range = |s: usize, e: usize| format!("bytes={s}-{e}");

    let start = 5 * MIB + 100;
    let got = edge
        .get_object()
        .bucket(&b)
        .key("big.iso")
        .range(range(start, start + 999))
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.content_range(),
        Some(format!("bytes {start}-{}/{}", start + 999, 10 * MIB).as_str())
    );
    assert!(read_body(got.body).await == data[start..start + 1000]);
    let sent = p.store.metric("outpost_s3_bytes_sent_total", &[]).await;
    assert!(
        sent <= (MIB + 4096) as f64,
        "a 1000-byte range costs one slice from the origin, not the object: {sent}"
    );

    // Other ranges: the same slice is a hit; a suffix range and a range across slices fill
    // just what is missing; the full read completes the rest.
    for (s, e) in [
        (start + 10, start + 20),
        (3 * MIB - 5, 4 * MIB + 5),
        (0, 10),
    ] {
        let got = edge
            .get_object()
            .bucket(&b)
            .key("big.iso")
            .range(range(s, e))
            .send()
            .await
            .unwrap();
        assert!(read_body(got.body).await == data[s..=e], "range {s}-{e}");
    }
    let got = edge
        .get_object()
        .bucket(&b)
        .key("big.iso")
        .range("bytes=-100")
        .send()
        .await
        .unwrap();
    assert!(read_body(got.body).await == data[data.len() - 100..]);
    assert!(object_bytes(&edge, &b, "big.iso").await == data);
    let before = p.store.metric("outpost_s3_bytes_sent_total", &[]).await;
    assert!(object_bytes(&edge, &b, "big.iso").await == data);
    assert_eq!(
        p.store.metric("outpost_s3_bytes_sent_total", &[]).await,
        before,
        "a second full read is served from cached slices"
    );
    let r = RawRequest::new("GET", &format!("/{b}/big.iso"))
        .header("range", &format!("bytes={}-", 10 * MIB))
        .sign(&p.edge)
        .send(&p.edge)
        .await;
    r.assert_error(416, "InvalidRange");
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{}", 10 * MIB).as_str())
    );
}

#[tokio::test]
async fn invalidation_takes_effect_at_once() {
    let p = EdgePair::start();
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "inval").await;
    for key in ["img/a.png", "img/b.png", "index.html"] {
        put(&s3, &b, key, b"old", "max-age=3600").await;
        get(&p.edge, &b, key).await;
        put(&s3, &b, key, b"new", "max-age=3600").await;
    }
    assert_eq!(get(&p.edge, &b, "img/a.png").await.0, b"old", "cached");

    let r = p.edge.invalidate(&[&format!("/{b}/img/*")]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    for key in ["img/a.png", "img/b.png"] {
        let (data, x, _) = get(&p.edge, &b, key).await;
        assert_eq!(
            (data.as_slice(), x.as_str()),
            (&b"new"[..], "Miss from outpost")
        );
    }
    assert_eq!(
        get(&p.edge, &b, "index.html").await.0,
        b"old",
        "outside the pattern"
    );
    let r = p.edge.invalidate(&[&format!("/{b}/index.html")]).await;
    assert_eq!(r.status, 201);
    assert_eq!(get(&p.edge, &b, "index.html").await.0, b"new");

    // The admin endpoint needs the edge's signature.
    let r = RawRequest::new("POST", "/_outpost/invalidations")
        .body(r#"{"paths":["/*"]}"#)
        .send(&p.edge)
        .await;
    r.assert_error(403, "AccessDenied");
}

#[tokio::test]
async fn missing_objects_are_cached_briefly() {
    let p = EdgePair::start();
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "neg").await;
    let edge = p.edge.client();
    assert_sdk_err(
        edge.get_object().bucket(&b).key("later").send().await,
        404,
        "NoSuchKey",
    );
    put(&s3, &b, "later", b"here now", "max-age=60").await;
    assert_sdk_err(
        edge.get_object().bucket(&b).key("later").send().await,
        404,
        "NoSuchKey",
    );
    assert_eq!(p.store.origin_gets("404").await, 1.0, "the 404 was cached");
    p.edge.advance_clock(11).await;
    assert_eq!(object_bytes(&edge, &b, "later").await, b"here now");
}

#[tokio::test]
async fn client_conditional_get_is_answered_from_cache() {
    let p = EdgePair::start();
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "cond").await;
    put(&s3, &b, "app.js", b"console.log(1)", "max-age=600").await;
    let etag = etag_of(b"console.log(1)");
    get(&p.edge, &b, "app.js").await;
    let r = RawRequest::new("GET", &format!("/{b}/app.js"))
        .header("if-none-match", &etag)
        .sign(&p.edge)
        .send(&p.edge)
        .await;
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert!(r.body.is_empty());
    let r = RawRequest::new("GET", &format!("/{b}/app.js"))
        .header("if-match", "\"nope\"")
        .sign(&p.edge)
        .send(&p.edge)
        .await;
    r.assert_error(412, "PreconditionFailed");
    let head = p
        .edge
        .client()
        .head_object()
        .bucket(&b)
        .key("app.js")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(14));
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(p.store.origin_gets("200").await, 1.0);
}

#[tokio::test]
async fn stale_while_revalidate_answers_at_once_and_refreshes_behind() {
    let p = EdgePair::start();
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "swr").await;
    let cc = "max-age=60, stale-while-revalidate=600";
    put(&s3, &b, "feed.json", b"old", cc).await;
    get(&p.edge, &b, "feed.json").await;
    put(&s3, &b, "feed.json", b"new", cc).await;
    p.edge.advance_clock(90).await;

    let (data, x, _) = get(&p.edge, &b, "feed.json").await;
    assert_eq!(
        (data.as_slice(), x.as_str()),
        (&b"old"[..], "Stale from outpost")
    );
    // The refresh runs in the background; give it a moment (bounded), no TTL is slept through.
    let mut refreshed = false;
    for _ in 0..100 {
        let (data, x, _) = get(&p.edge, &b, "feed.json").await;
        if data == b"new" {
            assert_eq!(x, "Hit from outpost");
            refreshed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        refreshed,
        "the background revalidation brought the new body"
    );
    assert_eq!(p.store.origin_gets("200").await, 2.0);

    let outcome = |o: &'static str| {
        let edge = &p.edge;
        async move {
            edge.metric("outpost_edge_cache_requests_total", &[("outcome", o)])
                .await
        }
    };
    assert_eq!(outcome("Miss").await, 1.0);
    // Stale until the refresh lands: at least the first one.
    assert!(outcome("Stale").await >= 1.0);
    assert!(outcome("Hit").await >= 1.0);
}
