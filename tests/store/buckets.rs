//! Service and bucket operations: ListBuckets, CreateBucket (naming rules, location constraint,
//! already owned), HeadBucket, DeleteBucket, GetBucketLocation, GetBucketVersioning, the public
//! read bucket policy, canned ACL headers, and virtual-hosted-style addressing.

use aws_sdk_s3::types::{
    BucketCannedAcl, BucketLocationConstraint, CreateBucketConfiguration, ObjectCannedAcl,
};

use crate::common::*;

#[tokio::test]
async fn bucket_lifecycle_create_list_head_delete() {
    let store = TestStore::start();
    let s3 = store.client();
    let name = unique_bucket("life");

    s3.create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create");
    let list = s3.list_buckets().send().await.expect("list buckets");
    let found = list
        .buckets()
        .iter()
        .find(|b| b.name() == Some(name.as_str()))
        .expect("bucket listed");
    assert!(
        found.creation_date().is_some(),
        "ListBuckets gives a CreationDate"
    );

    s3.head_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("head existing bucket");
    s3.delete_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("delete empty bucket");

    let (status, _) = sdk_err(s3.head_bucket().bucket(&name).send().await);
    assert_eq!(status, 404, "HeadBucket after delete");
    let list = s3.list_buckets().send().await.unwrap();
    assert!(
        list.buckets()
            .iter()
            .all(|b| b.name() != Some(name.as_str())),
        "deleted bucket still listed"
    );
}

#[tokio::test]
async fn create_bucket_with_and_without_location_constraint() {
    let store = TestStore::start();
    let s3 = store.client();

    // The SDK with an explicit CreateBucketConfiguration body.
    let with_body = unique_bucket("loc");
    s3.create_bucket()
        .bucket(&with_body)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from("us-east-1"))
                .build(),
        )
        .send()
        .await
        .expect("create with LocationConstraint us-east-1 (the store's region)");

    // A raw body exactly as older clients send it (with xmlns), and one with no body at all.
    let raw_body = unique_bucket("rawloc");
    let xml = r#"<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>"#;
    let r = RawRequest::new("PUT", &format!("/{raw_body}"))
        .body(xml)
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "raw CreateBucket with body: {}", r.text());
    assert!(r.header("x-amz-request-id").is_some());
    let no_body = unique_bucket("nobody");
    let r = RawRequest::new("PUT", &format!("/{no_body}"))
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "raw CreateBucket without body: {}", r.text());

    for b in [&with_body, &raw_body, &no_body] {
        s3.head_bucket()
            .bucket(b)
            .send()
            .await
            .expect("created bucket exists");
        let loc = s3
            .get_bucket_location()
            .bucket(b)
            .send()
            .await
            .expect("GetBucketLocation");
        let value = loc
            .location_constraint()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default();
        // S3 reports us-east-1 as an empty LocationConstraint; "us-east-1" is also understood.
        assert!(
            value.is_empty() || value == "us-east-1",
            "location of {b}: {value:?}"
        );
    }
    // The raw answer is a LocationConstraint document.
    let r = RawRequest::new("GET", &format!("/{no_body}?location"))
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("LocationConstraint"),
        "GetBucketLocation body: {}",
        r.text()
    );
}

#[tokio::test]
async fn invalid_bucket_names_are_rejected() {
    let store = TestStore::start();
    let too_long = "a".repeat(64);
    let bad = [
        "ab",
        too_long.as_str(),
        "UpperCase",
        "under_score",
        "-leading-dash",
        "trailing-dash-",
        "192.168.5.4",
        "two..dots",
    ];
    for name in bad {
        let r = RawRequest::new("PUT", &format!("/{name}"))
            .sign(&store)
            .send(&store)
            .await;
        assert_eq!(
            r.status,
            400,
            "bucket name {name:?} must be rejected, got {} {}",
            r.status,
            r.text()
        );
        r.assert_error(400, "InvalidBucketName");
    }
    // The edges of the valid range.
    let s3 = store.client();
    let three = format!("b{}", &unique_bucket("x")[2..4]);
    let sixty_three = unique_bucket(&"c".repeat(50));
    assert_eq!(sixty_three.len(), 63);
    for name in [three.as_str(), sixty_three.as_str(), "with.dots.ok"] {
        s3.create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("valid name {name:?}: {e:?}"));
    }
}

/// As AWS: in us-east-1 creating a bucket you already own succeeds and changes nothing (its
/// objects stay); in any other region it is 409 BucketAlreadyOwnedByYou.
#[tokio::test]
async fn creating_an_existing_bucket_succeeds_in_us_east_1_only() {
    let store = TestStore::start();
    let s3 = store.client();
    let name = store.bucket(&s3, "dup").await;
    put_bytes(&s3, &name, "k", "kept").await;
    s3.create_bucket()
        .bucket(&name)
        .acl(aws_sdk_s3::types::BucketCannedAcl::Private)
        .send()
        .await
        .expect("us-east-1 answers 200");
    assert_eq!(object_bytes(&s3, &name, "k").await, b"kept");
    let anonymous = RawRequest::new("GET", &format!("/{name}/k"))
        .send(&store)
        .await;
    anonymous.assert_error(403, "AccessDenied");

    let elsewhere =
        TestStore::start_with(StoreOptions::default().env("OUTPOST_REGION", "eu-west-1"));
    let opts = SignOpts {
        region: "eu-west-1".into(),
        ..SignOpts::default()
    };
    for expected in [200, 409] {
        let (req, _) = RawRequest::new("PUT", "/dup-eu").sign_with(&elsewhere, &opts);
        let r = req.send(&elsewhere).await;
        assert_eq!(r.status, expected, "{}", r.text());
    }
    let (req, _) = RawRequest::new("PUT", "/dup-eu").sign_with(&elsewhere, &opts);
    req.send(&elsewhere)
        .await
        .assert_error(409, "BucketAlreadyOwnedByYou");
}

#[tokio::test]
async fn delete_non_empty_bucket_is_refused() {
    let store = TestStore::start();
    let s3 = store.client();
    let name = store.bucket(&s3, "nonempty").await;
    put_bytes(&s3, &name, "k", "x").await;

    assert_sdk_err(
        s3.delete_bucket().bucket(&name).send().await,
        409,
        "BucketNotEmpty",
    );
    s3.head_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("bucket survives a refused delete");
    s3.head_object()
        .bucket(&name)
        .key("k")
        .send()
        .await
        .expect("object survives");

    s3.delete_object()
        .bucket(&name)
        .key("k")
        .send()
        .await
        .unwrap();
    s3.delete_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("delete once empty");
}

#[tokio::test]
async fn missing_bucket_gives_no_such_bucket() {
    let store = TestStore::start();
    let s3 = store.client();
    let name = unique_bucket("missing");
    assert_sdk_err(
        s3.delete_bucket().bucket(&name).send().await,
        404,
        "NoSuchBucket",
    );
    assert_sdk_err(
        s3.list_objects_v2().bucket(&name).send().await,
        404,
        "NoSuchBucket",
    );
    assert_sdk_err(
        s3.put_object()
            .bucket(&name)
            .key("k")
            .body(body("x"))
            .send()
            .await,
        404,
        "NoSuchBucket",
    );
    assert_sdk_err(
        s3.get_object().bucket(&name).key("k").send().await,
        404,
        "NoSuchBucket",
    );
    let r = RawRequest::new("GET", &format!("/{name}/k"))
        .sign(&store)
        .send(&store)
        .await;
    r.assert_error(404, "NoSuchBucket");
    assert_eq!(r.xml("BucketName").as_deref().unwrap_or(&name), name);
}

#[tokio::test]
async fn bucket_versioning_reports_unversioned() {
    let store = TestStore::start();
    let s3 = store.client();
    let name = store.bucket(&s3, "ver").await;
    let v = s3
        .get_bucket_versioning()
        .bucket(&name)
        .send()
        .await
        .expect("GetBucketVersioning");
    assert!(
        v.status().is_none(),
        "a never-versioned bucket has no Status, got {:?}",
        v.status()
    );
    let r = RawRequest::new("GET", &format!("/{name}?versioning"))
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("VersioningConfiguration"),
        "body: {}",
        r.text()
    );
}

fn public_read_policy(bucket: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    )
}

#[tokio::test]
async fn public_read_policy_allows_anonymous_get_and_head_only() {
    let store = TestStore::start();
    let s3 = store.client();
    let name = store.bucket(&s3, "public").await;
    let data = b"hello, anonymous world".to_vec();
    s3.put_object()
        .bucket(&name)
        .key("site/index.html")
        .content_type("text/html")
        .body(body(data.clone()))
        .send()
        .await
        .unwrap();

    // Private by default.
    let r = RawRequest::new("GET", &format!("/{name}/site/index.html"))
        .send(&store)
        .await;
    r.assert_error(403, "AccessDenied");
    assert_sdk_err(
        s3.get_bucket_policy().bucket(&name).send().await,
        404,
        "NoSuchBucketPolicy",
    );

    s3.put_bucket_policy()
        .bucket(&name)
        .policy(public_read_policy(&name))
        .send()
        .await
        .expect("PutBucketPolicy");
    let got = s3
        .get_bucket_policy()
        .bucket(&name)
        .send()
        .await
        .expect("GetBucketPolicy");
    let got: serde_json::Value =
        serde_json::from_str(got.policy().expect("policy text")).expect("policy is JSON");
    let want: serde_json::Value = serde_json::from_str(&public_read_policy(&name)).unwrap();
    assert_eq!(
        got["Statement"][0]["Action"], want["Statement"][0]["Action"],
        "policy round trip: {got}"
    );
    assert_eq!(
        got["Statement"][0]["Resource"],
        want["Statement"][0]["Resource"]
    );

    // Anonymous GET and HEAD now work.
    let r = RawRequest::new("GET", &format!("/{name}/site/index.html"))
        .send(&store)
        .await;
    assert_eq!(
        r.status,
        200,
        "anonymous GET on a public-read bucket: {}",
        r.text()
    );
    assert_eq!(r.body, data);
    assert_eq!(r.header("content-type"), Some("text/html"));
    let r = RawRequest::new("HEAD", &format!("/{name}/site/index.html"))
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "anonymous HEAD");
    assert_eq!(
        r.header("content-length"),
        Some(data.len().to_string().as_str())
    );
    let r = RawRequest::new("GET", &format!("/{name}/site/index.html"))
        .header("range", "bytes=0-4")
        .send(&store)
        .await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (206, &b"hello"[..]),
        "anonymous ranged GET"
    );
    // A real HTTP client (the browser case).
    let resp = reqwest::get(format!("{}/{name}/site/index.html", store.url))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());
    // Missing key: anonymous readers with s3:GetObject but not s3:ListBucket see 403 (as on AWS)
    // or 404; never a 200.
    let r = RawRequest::new("GET", &format!("/{name}/site/nope.html"))
        .send(&store)
        .await;
    assert!(
        matches!(r.status, 403 | 404),
        "anonymous GET of a missing key: {}",
        r.status
    );
    r.assert_error_shape();

    // Nothing else is granted.
    let r = RawRequest::new("PUT", &format!("/{name}/site/evil.html"))
        .body("x")
        .send(&store)
        .await;
    r.assert_error(403, "AccessDenied");
    let r = RawRequest::new("DELETE", &format!("/{name}/site/index.html"))
        .send(&store)
        .await;
    r.assert_error(403, "AccessDenied");
    let r = RawRequest::new("GET", &format!("/{name}?list-type=2"))
        .send(&store)
        .await;
    r.assert_error(403, "AccessDenied");
    let r = RawRequest::new("GET", &format!("/{name}?policy"))
        .send(&store)
        .await;
    r.assert_error(403, "AccessDenied");
    s3.head_object()
        .bucket(&name)
        .key("site/index.html")
        .send()
        .await
        .expect("still there");
    assert_sdk_err(
        s3.head_object()
            .bucket(&name)
            .key("site/evil.html")
            .send()
            .await,
        404,
        "NotFound",
    );

    // Deleting the policy makes the bucket private again.
    s3.delete_bucket_policy()
        .bucket(&name)
        .send()
        .await
        .expect("DeleteBucketPolicy");
    let r = RawRequest::new("GET", &format!("/{name}/site/index.html"))
        .send(&store)
        .await;
    r.assert_error(403, "AccessDenied");
    assert_sdk_err(
        s3.get_bucket_policy().bucket(&name).send().await,
        404,
        "NoSuchBucketPolicy",
    );
}

#[tokio::test]
async fn public_read_policy_with_principal_aws_star_and_action_list() {
    let store = TestStore::start();
    let s3 = store.client();
    let name = store.bucket(&s3, "public2").await;
    put_bytes(&s3, &name, "a.txt", "A").await;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":["*"]}},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::{name}/*"]}}]}}"#
    );
    s3.put_bucket_policy()
        .bucket(&name)
        .policy(policy)
        .send()
        .await
        .expect("PutBucketPolicy (list form)");
    let r = RawRequest::new("GET", &format!("/{name}/a.txt"))
        .send(&store)
        .await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"A"[..]));
}

#[tokio::test]
async fn malformed_bucket_policy_is_rejected() {
    let store = TestStore::start();
    let s3 = store.client();
    let name = store.bucket(&s3, "badpol").await;
    let (status, code) = sdk_err(
        s3.put_bucket_policy()
            .bucket(&name)
            .policy("{not json")
            .send()
            .await,
    );
    assert_eq!((status, code.as_str()), (400, "MalformedPolicy"));
    let r = RawRequest::new("GET", &format!("/{name}?policy"))
        .sign(&store)
        .send(&store)
        .await;
    r.assert_error(404, "NoSuchBucketPolicy");
}

#[tokio::test]
async fn anonymous_requests_on_private_bucket_are_denied() {
    let store = TestStore::start();
    let s3 = store.client();
    let name = store.bucket(&s3, "private").await;
    put_bytes(&s3, &name, "secret.txt", "s3cr3t").await;

    for (method, target) in [
        ("GET", format!("/{name}/secret.txt")),
        ("GET", format!("/{name}")),
        ("GET", format!("/{name}?list-type=2")),
        ("GET", "/".to_string()),
        ("DELETE", format!("/{name}/secret.txt")),
        ("PUT", format!("/{name}/new.txt")),
        ("DELETE", format!("/{name}")),
    ] {
        let r = RawRequest::new(method, &target).send(&store).await;
        r.assert_error(403, "AccessDenied");
        assert!(!r.text().contains("s3cr3t"));
    }
    // HEAD has no body, only the status.
    let r = RawRequest::new("HEAD", &format!("/{name}/secret.txt"))
        .send(&store)
        .await;
    assert_eq!(r.status, 403);
    assert!(r.header("x-amz-request-id").is_some());
    s3.head_object()
        .bucket(&name)
        .key("secret.txt")
        .send()
        .await
        .expect("object untouched");
    assert_sdk_err(
        s3.head_object().bucket(&name).key("new.txt").send().await,
        404,
        "NotFound",
    );
}

#[tokio::test]
async fn owner_only_canned_acl_headers_are_accepted() {
    let store = TestStore::start();
    let s3 = store.client();
    let name = unique_bucket("acl");
    s3.create_bucket()
        .bucket(&name)
        .acl(BucketCannedAcl::Private)
        .send()
        .await
        .expect("create with x-amz-acl: private");

    s3.put_object()
        .bucket(&name)
        .key("p")
        .acl(ObjectCannedAcl::Private)
        .body(body("p"))
        .send()
        .await
        .expect("put with private ACL");
    s3.put_object()
        .bucket(&name)
        .key("q")
        .acl(ObjectCannedAcl::BucketOwnerFullControl)
        .body(body("q"))
        .send()
        .await
        .expect("put with bucket-owner-full-control ACL");
    // rclone style: raw x-amz-acl: private with Content-MD5.
    let data = b"rclone";
    let r = RawRequest::new("PUT", &format!("/{name}/r"))
        .header("x-amz-acl", "private")
        .header("content-md5", &hash::b64(&hash::md5(data)))
        .body(data.to_vec())
        .sign_with(&store, &SignOpts::default().payload(raw::Payload::Unsigned))
        .0
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = object_bytes(&s3, &name, "r").await;
    assert_eq!(got, data);
}

#[tokio::test]
async fn virtual_hosted_style_addressing() {
    let store =
        TestStore::start_with(StoreOptions::default().env("OUTPOST_BASE_DOMAIN", "localhost"));
    let s3 = store.client();
    let name = store.bucket(&s3, "vhost").await;
    let vhost = format!("{name}.localhost:{}", store.port);

    let data = b"virtual hosted".to_vec();
    let r = RawRequest::new("PUT", "/dir/file.txt")
        .host(&vhost)
        .body(data.clone())
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "PUT via Host: {vhost}: {}", r.text());

    // Path style sees the same object.
    let got = s3
        .get_object()
        .bucket(&name)
        .key("dir/file.txt")
        .send()
        .await
        .expect("path-style GET");
    assert_eq!(read_body(got.body).await, data);

    let r = RawRequest::new("GET", "/dir/file.txt")
        .host(&vhost)
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!((r.status, &r.body), (200, &data), "virtual-hosted GET");
    let r = RawRequest::new("GET", "/?list-type=2&prefix=dir%2F")
        .host(&vhost)
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.xml_all("Key"), vec!["dir/file.txt".to_string()]);
    assert_eq!(r.xml("Name").as_deref(), Some(name.as_str()));
    let r = RawRequest::new("HEAD", "/")
        .host(&vhost)
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "HeadBucket virtual-hosted");

    // The bare base domain is the service endpoint.
    let r = RawRequest::new("GET", "/")
        .host(&format!("localhost:{}", store.port))
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(
        r.status,
        200,
        "ListBuckets on the base domain: {}",
        r.text()
    );
    assert!(r.xml_all("Name").contains(&name));

    // A key that looks like a bucket under virtual-hosted style stays a key.
    let r = RawRequest::new("PUT", &format!("/{name}/inner"))
        .host(&vhost)
        .body("i")
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200);
    s3.head_object()
        .bucket(&name)
        .key(format!("{name}/inner"))
        .send()
        .await
        .expect("key keeps its first segment");
}
