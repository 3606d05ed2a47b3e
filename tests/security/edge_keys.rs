//! Edges hold no root key: an edge runs with a key made by `outpost key create NAME --edge`,
//! checks each client's signature with that client's key (signing keys the store publishes to
//! it), decides every request with the store's evaluator on the client's facts before it
//! serves from its cache or relays, and relays on the client's behalf. Before, an edge with an
//! edge key knew no key but its own, served what it had cached to anyone it let in, and a
//! conditional policy never saw a cached read.

use std::time::{Duration, Instant};

use crate::common::keys::{create_key, key_ok};
use crate::common::*;

/// A store, and an edge in front of it running with an edge key.
pub(crate) struct KeyedEdge {
    pub(crate) store: TestStore,
    pub(crate) edge: TestStore,
    /// The edge's own key (`edge`), as it was given it.
    pub(crate) edge_key: (String, String),
}

impl KeyedEdge {
    fn start() -> KeyedEdge {
        KeyedEdge::start_with("")
    }

    /// [`KeyedEdge::start`], a root client of the store and a new bucket.
    pub(crate) async fn with_bucket(prefix: &str) -> (KeyedEdge, aws_sdk_s3::Client, String) {
        let pair = KeyedEdge::start();
        let root = pair.store.client();
        let b = pair.store.bucket(&root, prefix).await;
        (pair, root, b)
    }

    fn start_with(edge_toml: &str) -> KeyedEdge {
        let store = TestStore::start();
        let (id, secret) = create_key(&store, "edge", &["--edge"]);
        let mut opts = StoreOptions::default()
            .env("OUTPOST_ACCESS_KEY_ID", &id)
            .env("OUTPOST_SECRET_ACCESS_KEY", &secret);
        if !edge_toml.is_empty() {
            opts = opts.config(&format!("[edge]\n{edge_toml}"));
        }
        let edge = TestStore::start_edge(&[&store], opts);
        KeyedEdge {
            store,
            edge,
            edge_key: (id, secret),
        }
    }

    /// A key named `name` with `rights` (`--read`, `--write`) on `bucket`.
    pub(crate) fn key(&self, name: &str, bucket: &str, rights: &[&str]) -> (String, String) {
        let key = create_key(&self.store, name, &[]);
        if !rights.is_empty() {
            let mut args = vec!["allow", name, "--bucket", bucket];
            args.extend_from_slice(rights);
            key_ok(&self.store, &args);
        }
        key
    }

    /// Waits until the edge holds what the store published after every change made so far:
    /// documents are whole snapshots in commit order, so once a key made now reads the
    /// bucket through the edge, every earlier change is there too.
    pub(crate) async fn synced(&self, bucket: &str) {
        let n = SYNCS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let marker = self.key(&format!("sync-{n}"), bucket, &["--read"]);
        let started = Instant::now();
        loop {
            let opts = SignOpts::default().keys(&marker.0, &marker.1);
            let r = RawRequest::new("HEAD", &format!("/{bucket}"))
                .sign_with(&self.edge, &opts)
                .0
                .send(&self.edge)
                .await;
            if r.status == 200 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the edge never learnt of a new key: {} {:?}",
                r.status,
                r.headers
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn get(&self, path: &str, key: Option<&(String, String)>) -> raw::RawResponse {
        self.get_with(path, key, &[]).await
    }

    async fn get_with(
        &self,
        path: &str,
        key: Option<&(String, String)>,
        headers: &[(&str, &str)],
    ) -> raw::RawResponse {
        let mut request = RawRequest::new("GET", path);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some((id, secret)) = key {
            let opts = SignOpts::default().keys(id, secret);
            request = request.sign_with(&self.edge, &opts).0;
        }
        request.send(&self.edge).await
    }
}

/// A policy that lets anyone read every object of `bucket`.
fn anyone_reads(bucket: &str) -> String {
    format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    )
}

static SYNCS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub(crate) fn is_hit(r: &raw::RawResponse) -> bool {
    r.header("x-cache").is_some_and(|x| x.starts_with("Hit"))
}

/// Polls `get` until it answers `status`; the time that took (at most `within`).
async fn refused_within<F, Fut>(within: Duration, mut get: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = raw::RawResponse>,
{
    let started = Instant::now();
    loop {
        let r = get().await;
        if r.status == 403 {
            assert_eq!(r.code(), "AccessDenied", "{}", r.text());
            return started.elapsed();
        }
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            started.elapsed() < within,
            "still served after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_read_key_reads_through_a_keyed_edge_miss_then_hit() {
    let (pair, root, b) = KeyedEdge::with_bucket("ek-read").await;
    put_bytes(&root, &b, "a.txt", b"hello".to_vec()).await;
    let reader = pair.key("reader", &b, &["--read"]);
    pair.synced(&b).await;
    let path = format!("/{b}/a.txt");
    let first = pair.get(&path, Some(&reader)).await;
    assert_eq!((first.status, first.body.as_slice()), (200, &b"hello"[..]));
    assert!(first.header("x-cache").unwrap().starts_with("Miss"));
    let second = pair.get(&path, Some(&reader)).await;
    assert_eq!(
        (second.status, second.body.as_slice()),
        (200, &b"hello"[..])
    );
    assert!(is_hit(&second));
    // The aws-sdk-s3 client too (its own signing, chunked checksums mode).
    let sdk = client_for(&pair.edge.url, &reader.0, &reader.1);
    assert_eq!(object_bytes(&sdk, &b, "a.txt").await, b"hello");
}

#[tokio::test]
async fn a_key_without_a_grant_is_refused_at_the_edge_even_for_a_cached_object() {
    let (pair, root, b) = KeyedEdge::with_bucket("ek-nogrant").await;
    put_bytes(&root, &b, "a.txt", b"secret".to_vec()).await;
    let reader = pair.key("reader", &b, &["--read"]);
    let stranger = pair.key("stranger", &b, &[]);
    pair.synced(&b).await;
    let path = format!("/{b}/a.txt");
    for _ in 0..2 {
        assert_eq!(pair.get(&path, Some(&reader)).await.status, 200);
    }
    for method in ["GET", "HEAD"] {
        for key in ["a.txt", "missing.txt"] {
            let opts = SignOpts::default().keys(&stranger.0, &stranger.1);
            let r = RawRequest::new(method, &format!("/{b}/{key}"))
                .sign_with(&pair.edge, &opts)
                .0
                .send(&pair.edge)
                .await;
            assert_eq!(r.status, 403, "{method} {key}: {}", r.text());
            if method == "GET" {
                r.assert_error(403, "AccessDenied");
            }
            assert_eq!(
                r.header("x-cache"),
                None,
                "{method} {key}: decided before the cache"
            );
        }
    }
    // Anonymous readers too: the bucket is private.
    pair.get(&path, None)
        .await
        .assert_error(403, "AccessDenied");
}

#[tokio::test]
async fn revoked_keys_and_a_policy_made_private_are_refused_at_the_edge_within_5s() {
    let (pair, root, b) = KeyedEdge::with_bucket("ek-revoke").await;
    put_bytes(&root, &b, "a.txt", b"cached".to_vec()).await;
    let path = format!("/{b}/a.txt");
    let denied = pair.key("denied", &b, &["--read"]);
    let deleted = pair.key("deleted", &b, &["--read"]);
    root.put_bucket_policy()
        .bucket(&b)
        .policy(anyone_reads(&b))
        .send()
        .await
        .unwrap();
    // Each reader has the object from the cache.
    let allowed_within = Duration::from_secs(5);
    for key in [Some(&denied), Some(&deleted), None] {
        let started = Instant::now();
        loop {
            if pair.get(&path, key).await.status == 200 {
                break;
            }
            assert!(
                started.elapsed() < allowed_within,
                "the policy never reached the edge"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(is_hit(&pair.get(&path, key).await));
    }
    // With the bucket public, a key's grant no longer decides its reads: make it private
    // again for the key tests, and check the anonymous reader is refused within 5 s.
    root.delete_bucket_policy().bucket(&b).send().await.unwrap();
    let took = refused_within(allowed_within, || pair.get(&path, None)).await;
    assert!(took < allowed_within, "policy made private: {took:?}");
    eprintln!("policy made private: refused at the edge after {took:?}");

    key_ok(&pair.store, &["deny", "denied", "--bucket", &b, "--read"]);
    let took = refused_within(allowed_within, || pair.get(&path, Some(&denied))).await;
    assert!(took < allowed_within, "key deny: {took:?}");
    eprintln!("key deny: refused at the edge after {took:?}");

    key_ok(&pair.store, &["delete", "deleted"]);
    let started = Instant::now();
    loop {
        let r = pair.get(&path, Some(&deleted)).await;
        if r.status == 403 {
            // Unknown at the edge now, as at the store.
            assert_eq!(r.code(), "InvalidAccessKeyId", "{}", r.text());
            eprintln!(
                "key delete: refused at the edge after {:?}",
                started.elapsed()
            );
            break;
        }
        assert_eq!(r.status, 200);
        assert!(started.elapsed() < allowed_within, "key delete");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_on_behalf_of_header_from_anyone_but_an_edge_key_is_refused_by_the_store() {
    let store = TestStore::start();
    let root = store.client();
    let b = store.bucket(&root, "ek-forge").await;
    put_bytes(&root, &b, "a.txt", b"x".to_vec()).await;
    let (reader, reader_secret) = create_key(&store, "reader", &[]);
    key_ok(&store, &["allow", "reader", "--bucket", &b, "--read"]);
    let (stranger, stranger_secret) = create_key(&store, "stranger", &[]);
    let path = format!("/{b}/a.txt");
    // A key without a grant claims to relay for one that has it; the root key claims too.
    for (id, secret) in [
        (stranger.as_str(), stranger_secret.as_str()),
        (ACCESS_KEY, SECRET_KEY),
        (reader.as_str(), reader_secret.as_str()),
    ] {
        for (header, value) in [
            ("x-amz-outpost-on-behalf-of", reader.as_str()),
            ("x-amz-outpost-on-behalf-of", "anonymous"),
            ("x-amz-outpost-client-ip", "10.1.2.3"),
        ] {
            let r = RawRequest::new("GET", &path)
                .header(header, value)
                .sign_with(&store, &SignOpts::default().keys(id, secret))
                .0
                .send(&store)
                .await;
            r.assert_error(403, "AccessDenied");
        }
    }
    // Unsigned, the header is refused too.
    RawRequest::new("GET", &path)
        .header("x-amz-outpost-on-behalf-of", &reader)
        .send(&store)
        .await
        .assert_error(403, "AccessDenied");
    // Through an edge, a client's own claim never travels: it is decided as itself.
    let (id, secret) = create_key(&store, "edge", &["--edge"]);
    let edge = TestStore::start_edge(
        &[&store],
        StoreOptions::default()
            .env("OUTPOST_ACCESS_KEY_ID", &id)
            .env("OUTPOST_SECRET_ACCESS_KEY", &secret),
    );
    let r = RawRequest::new("GET", &path)
        .header("x-amz-outpost-on-behalf-of", &reader)
        .sign_with(
            &edge,
            &SignOpts::default().keys(&stranger, &stranger_secret),
        )
        .0
        .send(&edge)
        .await;
    r.assert_error(403, "AccessDenied");
}

#[tokio::test]
async fn a_write_only_key_uploads_through_the_edge_and_a_read_only_key_cannot() {
    let (pair, root, b) = KeyedEdge::with_bucket("ek-write").await;
    let writer = pair.key("writer", &b, &["--write"]);
    let reader = pair.key("reader", &b, &["--read"]);
    pair.synced(&b).await;
    let as_writer = client_for(&pair.edge.url, &writer.0, &writer.1);
    put_bytes(&as_writer, &b, "single.bin", b"one piece".to_vec()).await;
    let part = random_bytes(5 << 20, 7);
    let id = start_upload(&as_writer, &b, "multi.bin").await;
    let parts = upload_parts(&as_writer, &b, "multi.bin", &id, &[&part, b"tail"]).await;
    complete_upload(&as_writer, &b, "multi.bin", &id, parts).await;
    assert_eq!(object_bytes(&root, &b, "single.bin").await, b"one piece");
    let mut whole = part.clone();
    whole.extend_from_slice(b"tail");
    assert_eq!(object_bytes(&root, &b, "multi.bin").await, whole);
    // The writer may not read back what it wrote: the edge decides as the writer.
    let r = pair.get(&format!("/{b}/single.bin"), Some(&writer)).await;
    r.assert_error(403, "AccessDenied");

    let as_reader = client_for(&pair.edge.url, &reader.0, &reader.1);
    let refused = as_reader
        .put_object()
        .bucket(&b)
        .key("nope.txt")
        .body(body(b"no".to_vec()))
        .send()
        .await;
    assert_sdk_err(refused, 403, "AccessDenied");
    let refused = as_reader
        .create_multipart_upload()
        .bucket(&b)
        .key("nope.bin")
        .send()
        .await;
    assert_sdk_err(refused, 403, "AccessDenied");
    let listed = root.list_objects_v2().bucket(&b).send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["multi.bin", "single.bin"]);
}

#[tokio::test]
async fn conditional_policies_hold_for_cached_reads_through_the_edge() {
    // The edge trusts the test's X-Forwarded-For as a load balancer's.
    let pair = KeyedEdge::start_with("trusted_proxies = [\"127.0.0.1/32\"]\n");
    let root = pair.store.client();
    let b = pair.store.bucket(&root, "ek-cond").await;
    put_bytes(&root, &b, "a.txt", b"public".to_vec()).await;
    root.put_bucket_policy()
        .bucket(&b)
        .policy(format!(
            r#"{{"Statement":[
            {{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*"}},
            {{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*",
              "Condition":{{"IpAddress":{{"aws:SourceIp":"203.0.113.0/24"}}}}}},
            {{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*",
              "Condition":{{"StringLike":{{"aws:UserAgent":"*evil*"}}}}}}]}}"#
        ))
        .send()
        .await
        .unwrap();
    let path = format!("/{b}/a.txt");
    let reader = pair.key("reader", &b, &["--read"]);
    let fine = [
        ("x-forwarded-for", "198.51.100.7"),
        ("user-agent", "fine/1"),
    ];
    let started = Instant::now();
    while pair.get_with(&path, None, &fine).await.status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "policy never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pair.synced(&b).await;
    let hit = pair.get_with(&path, None, &fine).await;
    assert!(
        hit.status == 200 && is_hit(&hit),
        "{:?}",
        hit.header("x-cache")
    );
    for key in [None, Some(&reader)] {
        for headers in [
            [("x-forwarded-for", "203.0.113.9"), ("user-agent", "fine/1")],
            [
                ("x-forwarded-for", "198.51.100.7"),
                ("user-agent", "evil-bot/2"),
            ],
        ] {
            let r = pair.get_with(&path, key, &headers).await;
            r.assert_error(403, "AccessDenied");
        }
        assert_eq!(pair.get_with(&path, key, &fine).await.status, 200);
    }
}

#[tokio::test]
async fn sigv2_presigned_urls_are_relayed_to_the_store_and_decided_there() {
    let (pair, root, b) = KeyedEdge::with_bucket("ek-v2").await;
    put_bytes(&root, &b, "file.txt", b"v2 presigned".to_vec()).await;
    let reader = pair.key("reader", &b, &["--read"]);
    let stranger = pair.key("stranger", &b, &[]);
    pair.synced(&b).await;
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let url = |(id, secret): &(String, String), secret_used: Option<&str>| {
        let sts = format!("GET\n\n\n{expires}\n/{b}/file.txt");
        let secret = secret_used.unwrap_or(secret);
        let sig = hash::b64(&hash::hmac_sha1(secret.as_bytes(), sts.as_bytes()));
        format!(
            "/{b}/file.txt?AWSAccessKeyId={}&Expires={expires}&Signature={}",
            enc_query(id),
            enc_query(&sig)
        )
    };
    for _ in 0..2 {
        let r = RawRequest::new("GET", &url(&reader, None))
            .send(&pair.edge)
            .await;
        assert_eq!((r.status, r.body.as_slice()), (200, &b"v2 presigned"[..]));
        assert_eq!(r.header("x-cache"), None, "relayed, never cached");
    }
    let r = RawRequest::new("GET", &url(&stranger, None))
        .send(&pair.edge)
        .await;
    r.assert_error(403, "AccessDenied");
    let r = RawRequest::new("GET", &url(&reader, Some("not-the-secret")))
        .send(&pair.edge)
        .await;
    r.assert_error(403, "SignatureDoesNotMatch");
}

#[tokio::test]
async fn a_presigned_url_from_days_ago_is_checked_at_the_edge() {
    let (pair, root, b) = KeyedEdge::with_bucket("ek-old").await;
    put_bytes(&root, &b, "a.txt", b"old url".to_vec()).await;
    let reader = pair.key("reader", &b, &["--read"]);
    pair.synced(&b).await;
    let three_days_ago = std::time::SystemTime::now() - Duration::from_secs(3 * 86_400);
    let opts = SignOpts::default()
        .keys(&reader.0, &reader.1)
        .time(three_days_ago);
    let r = RawRequest::new("GET", &format!("/{b}/a.txt"))
        .presign(&pair.edge, &opts, Duration::from_secs(7 * 86_400))
        .send(&pair.edge)
        .await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"old url"[..]),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn the_edge_document_is_for_edge_keys_and_root_and_carries_no_secret() {
    let store = TestStore::start();
    let root = store.client();
    let b = store.bucket(&root, "ek-doc").await;
    let (app, app_secret) = create_key(&store, "app", &[]);
    key_ok(&store, &["allow", "app", "--bucket", &b, "--read"]);
    let (edge, edge_secret) = create_key(&store, "edge", &["--edge"]);
    let path = "/_outpost/admin/edge/access";
    let get = |id: &str, secret: &str| {
        RawRequest::new("GET", path).sign_with(&store, &SignOpts::default().keys(id, secret))
    };
    let r = get(&edge, &edge_secret).0.send(&store).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let doc: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(doc["caller_is_edge"], true);
    assert_eq!(doc["keys"][&app]["grants"][&b]["read"], true);
    assert_eq!(
        doc["keys"][&app]["signing_keys"].as_object().unwrap().len(),
        9
    );
    assert!(
        doc["keys"].get(&edge).is_none(),
        "edge keys are not published"
    );
    assert!(!r.text().contains(&app_secret) && !r.text().contains(&edge_secret));
    assert!(!r.text().contains(SECRET_KEY));
    // Polled again with its version: 304, nothing sent.
    let etag = r.header("etag").unwrap().to_owned();
    let (again, _) = RawRequest::new("GET", path)
        .header("if-none-match", &etag)
        .sign_with(&store, &SignOpts::default().keys(&edge, &edge_secret));
    let again = again.send(&store).await;
    assert_eq!((again.status, again.body.len()), (304, 0));
    // A change is a new version.
    key_ok(&store, &["deny", "app", "--bucket", &b, "--read"]);
    let (changed, _) = RawRequest::new("GET", path)
        .header("if-none-match", &etag)
        .sign_with(&store, &SignOpts::default().keys(&edge, &edge_secret));
    assert_eq!(changed.send(&store).await.status, 200);
    // The root key may read it; no other key, no anonymous caller, no presigned URL.
    assert_eq!(get(ACCESS_KEY, SECRET_KEY).0.send(&store).await.status, 200);
    assert_eq!(get(&app, &app_secret).0.send(&store).await.status, 403);
    assert_eq!(RawRequest::new("GET", path).send(&store).await.status, 403);
    let presigned = RawRequest::new("GET", path).presign(
        &store,
        &SignOpts::default().keys(&edge, &edge_secret),
        Duration::from_secs(600),
    );
    assert_eq!(presigned.send(&store).await.status, 403);
}

#[tokio::test]
async fn a_keyed_edge_serves_its_website_distribution_from_a_private_bucket() {
    let store = TestStore::start();
    let root = store.client();
    let b = store.bucket(&root, "ek-site").await;
    put_bytes(&root, &b, "index.html", b"<h1>home</h1>".to_vec()).await;
    let website = aws_sdk_s3::types::WebsiteConfiguration::builder()
        .index_document(
            aws_sdk_s3::types::IndexDocument::builder()
                .suffix("index.html")
                .build()
                .unwrap(),
        )
        .build();
    root.put_bucket_website()
        .bucket(&b)
        .website_configuration(website)
        .send()
        .await
        .unwrap();
    let (id, secret) = create_key(&store, "edge", &["--edge"]);
    let edge = TestStore::start_edge(
        &[&store],
        StoreOptions::default()
            .env("OUTPOST_ACCESS_KEY_ID", &id)
            .env("OUTPOST_SECRET_ACCESS_KEY", &secret)
            .config(&format!(
                "[edge]\n[[edge.distribution]]\nhosts = [\"www.example.test\"]\nbucket = \"{b}\"\nwebsite = true\n"
            )),
    );
    // The site reads its bucket as the edge (a CDN's origin access), index document included;
    // the S3 face of the same edge still refuses anonymous readers of the private bucket.
    let r = RawRequest::new("GET", "/")
        .send_to(&edge.addr, "www.example.test")
        .await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"<h1>home</h1>"[..]),
        "{}",
        r.text()
    );
    RawRequest::new("GET", &format!("/{b}/index.html"))
        .send(&edge)
        .await
        .assert_error(403, "AccessDenied");
}

#[tokio::test]
async fn a_cached_404_is_access_denied_to_a_reader_who_may_not_list() {
    let (pair, root, b) = KeyedEdge::with_bucket("ek-404").await;
    root.put_bucket_policy()
        .bucket(&b)
        .policy(anyone_reads(&b))
        .send()
        .await
        .unwrap();
    let lister = pair.key("lister", &b, &["--read"]);
    pair.synced(&b).await;
    let path = format!("/{b}/missing.txt");
    // A reader who may list the bucket learns the key is missing; the 404 is cached.
    for _ in 0..2 {
        pair.get(&path, Some(&lister))
            .await
            .assert_error(404, "NoSuchKey");
    }
    // An anonymous reader, allowed GetObject but not ListBucket, does not.
    pair.get(&path, None)
        .await
        .assert_error(403, "AccessDenied");
}

#[tokio::test]
async fn the_store_decides_a_relay_as_the_client_on_the_facts_its_edge_asserts() {
    let store = TestStore::start();
    let root = store.client();
    let b = store.bucket(&root, "ek-assert").await;
    put_bytes(&root, &b, "a.txt", b"x".to_vec()).await;
    root.put_bucket_policy()
        .bucket(&b)
        .policy(format!(
            r#"{{"Statement":[{{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*",
              "Condition":{{"IpAddress":{{"aws:SourceIp":"203.0.113.0/24"}}}}}}]}}"#
        ))
        .send()
        .await
        .unwrap();
    let (reader, _) = create_key(&store, "reader", &[]);
    key_ok(&store, &["allow", "reader", "--bucket", &b, "--read"]);
    let (stranger, _) = create_key(&store, "stranger", &[]);
    let (edge, edge_secret) = create_key(&store, "edge", &["--edge"]);
    let relay = |client: &str, ip: &str| {
        RawRequest::new("GET", &format!("/{b}/a.txt"))
            .header("x-amz-outpost-on-behalf-of", client)
            .header("x-amz-outpost-client-ip", ip)
            .sign_with(&store, &SignOpts::default().keys(&edge, &edge_secret))
            .0
    };
    assert_eq!(
        relay(&reader, "198.51.100.1").send(&store).await.status,
        200
    );
    relay(&reader, "203.0.113.9")
        .send(&store)
        .await
        .assert_error(403, "AccessDenied");
    // As the client: one without a grant is refused, whoever relays it; so is no one.
    relay(&stranger, "198.51.100.1")
        .send(&store)
        .await
        .assert_error(403, "AccessDenied");
    relay("anonymous", "198.51.100.1")
        .send(&store)
        .await
        .assert_error(403, "AccessDenied");
    relay("OKNOSUCHKEY000000000", "198.51.100.1")
        .send(&store)
        .await
        .assert_error(403, "AccessDenied");
    // The edge key for itself may fill its cache, the policy aside.
    let own = RawRequest::new("GET", &format!("/{b}/a.txt"))
        .sign_with(&store, &SignOpts::default().keys(&edge, &edge_secret))
        .0;
    assert_eq!(own.send(&store).await.status, 200);
}

/// A form upload through a keyed edge is an upload by the key that signed its policy: the
/// edge checks that key's signature and grants, and relays only a writer's form.
#[tokio::test]
async fn form_uploads_through_a_keyed_edge_write_only_where_the_signer_may() {
    use crate::common::form::{PostForm, assert_refused, basic_conditions};
    let (pair, root, b) = KeyedEdge::with_bucket("ek-form").await;
    let writer = pair.key("form-writer", &b, &["--write"]);
    let reader = pair.key("form-reader", &b, &["--read"]);
    let nobody = pair.key("form-nobody", &b, &[]);
    pair.synced(&b).await;
    let signed_by = |(id, secret): &(String, String)| {
        PostForm::new(&[("key", "k")]).signed_with(
            &SignOpts::default().keys(id, secret),
            &basic_conditions(&b, "k"),
            std::time::SystemTime::now() + Duration::from_secs(600),
        )
    };
    let denied = (403, "AccessDenied", "Access Denied");
    for key in [&reader, &nobody] {
        assert_refused(&pair.edge, &root, &b, "k", &signed_by(key), denied).await;
    }
    let r = signed_by(&writer)
        .request(&format!("/{b}"))
        .send(&pair.edge)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(object_bytes(&root, &b, "k").await, b"hello from a form");
}

/// boto3's default presigned POST for a custom endpoint is SigV2, which no published signing
/// key checks: the keyed edge relays the form for the store to check, as the client wrote it.
#[tokio::test]
async fn sigv2_forms_through_a_keyed_edge_are_checked_by_the_store() {
    use crate::common::form::{PostForm, assert_refused, basic_conditions, cut_mid_form};
    let (pair, root, b) = KeyedEdge::with_bucket("ek-form2").await;
    let writer = pair.key("form2-writer", &b, &["--write"]);
    let reader = pair.key("form2-reader", &b, &["--read"]);
    pair.synced(&b).await;
    let in_an_hour = std::time::SystemTime::now() + Duration::from_secs(3600);
    let by = |(id, secret): &(String, String), key: &str| {
        PostForm::new(&[("key", key)]).signed_v2(
            (id, secret),
            &basic_conditions(&b, key),
            in_an_hour,
        )
    };
    // Cut mid-file first (the edge counts this PostObject): the store never sees a whole form.
    let cut = by(&writer, "cut").file("c", random_bytes(4 * MIB, 3));
    cut_mid_form(&pair.edge, &root, &b, "outpost_edge_requests_total", &cut).await;

    let denied = (403, "AccessDenied", "Access Denied");
    assert_refused(&pair.edge, &root, &b, "k", &by(&reader, "k"), denied).await;
    let tampered = by(&writer, "k").set("signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let mismatch = (403, "SignatureDoesNotMatch", "");
    assert_refused(&pair.edge, &root, &b, "k", &tampered, mismatch).await;
    let outside = by(&writer, "k").set("x-amz-meta-extra", "1");
    let extra = (403, "AccessDenied", "Extra input fields: x-amz-meta-extra");
    assert_refused(&pair.edge, &root, &b, "k", &outside, extra).await;

    // Forms for any key under up/ (the file's name), with one more condition.
    let under_up = |extra: serde_json::Value| {
        let mut conditions = basic_conditions(&b, "");
        conditions[1] = serde_json::json!(["starts-with", "$key", "up/"]);
        conditions.push(extra);
        conditions
    };
    let conditions = under_up(serde_json::json!({"success_action_status": "201"}));
    let r = PostForm::new(&[("key", "up/${filename}"), ("success_action_status", "201")])
        .file("name.txt", b"sigv2 via the edge".to_vec())
        .signed_v2((&writer.0, &writer.1), &conditions, in_an_hour)
        .request(&format!("/{b}"))
        .send(&pair.edge)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The answer names the object at the edge, never at the store behind it.
    let location = r.xml("Location").unwrap();
    assert_eq!(
        location,
        format!("http://{}/{b}/up/name.txt", pair.edge.addr)
    );
    assert_eq!(
        object_bytes(&root, &b, "up/name.txt").await,
        b"sigv2 via the edge"
    );
    assert_eq!(
        r.xml("ETag").unwrap(),
        format!(
            "\"{}\"",
            crate::common::hash::md5_hex(b"sigv2 via the edge")
        )
    );
    // A redirect holding ${filename} is followed as the store expanded it.
    let conditions = under_up(serde_json::json!([
        "starts-with",
        "$success_action_redirect",
        "http://app.test/"
    ]));
    let r = PostForm::new(&[
        ("key", "up/${filename}"),
        (
            "success_action_redirect",
            "http://app.test/done/${filename}",
        ),
    ])
    .file("r.txt", b"redirected".to_vec())
    .signed_v2((&writer.0, &writer.1), &conditions, in_an_hour)
    .request(&format!("/{b}"))
    .send(&pair.edge)
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let to = r.header("location").unwrap();
    assert!(
        to.starts_with(&format!(
            "http://app.test/done/r.txt?bucket={b}&key=up%2Fr.txt&etag="
        )),
        "{to}"
    );
    assert_eq!(object_bytes(&root, &b, "up/r.txt").await, b"redirected");
}
