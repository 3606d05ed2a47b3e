//! Hole 2: a bucket policy scoped to a prefix opened the whole bucket. `Resource:
//! arn:aws:s3:::pfx/public/*` made `pfx/private/b.txt` anonymously readable, at the store and
//! through an edge. Resources are now matched exactly (IAM wildcards over the object's ARN), and
//! statements the store cannot enforce exactly are refused at PutBucketPolicy.

use crate::common::*;

fn policy(resource: &str, action: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"{action}","Resource":"{resource}"}}]}}"#
    )
}

async fn anonymous_get(server: &TestStore, path: &str) -> raw::RawResponse {
    RawRequest::new("GET", path).send(server).await
}

#[tokio::test]
async fn a_prefix_policy_opens_only_that_prefix() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "pfx").await;
    for key in [
        "public/a.txt",
        "public/sub/c.txt",
        "private/b.txt",
        "publicity.txt",
    ] {
        put_bytes(&s3, &b, key, key.as_bytes().to_vec()).await;
    }
    s3.put_bucket_policy()
        .bucket(&b)
        .policy(policy(
            &format!("arn:aws:s3:::{b}/public/*"),
            "s3:GetObject",
        ))
        .send()
        .await
        .expect("a prefix-scoped read policy is accepted");
    for server in [&pair.store, &pair.edge] {
        for key in ["public/a.txt", "public/sub/c.txt"] {
            let r = anonymous_get(server, &format!("/{b}/{key}")).await;
            assert_eq!(r.status, 200, "{key}: {}", r.text());
            assert_eq!(r.body, key.as_bytes());
        }
        // HEAD first, then GET, twice: nothing the edge cached may widen access.
        for _ in 0..2 {
            for key in ["private/b.txt", "publicity.txt"] {
                let head = RawRequest::new("HEAD", &format!("/{b}/{key}"))
                    .send(server)
                    .await;
                assert_eq!(head.status, 403, "HEAD {key}");
                anonymous_get(server, &format!("/{b}/{key}"))
                    .await
                    .assert_error(403, "AccessDenied");
            }
        }
        // Listing was not granted.
        anonymous_get(server, &format!("/{b}?list-type=2"))
            .await
            .assert_error(403, "AccessDenied");
    }
    // Signed readers still read everything.
    assert_eq!(
        object_bytes(&s3, &b, "private/b.txt").await,
        b"private/b.txt"
    );
}

#[tokio::test]
async fn a_single_object_policy_and_wildcards() {
    let store = TestStore::start();
    let s3 = store.client();
    let b = store.bucket(&s3, "wild").await;
    for key in [
        "img/a.png",
        "img/a.png.bak",
        "img/deep/b.png",
        "index.html",
        "index.html2",
    ] {
        put_bytes(&s3, &b, key, b"x".to_vec()).await;
    }
    s3.put_bucket_policy()
        .bucket(&b)
        .policy(format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":"*"}},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::{b}/index.html","arn:aws:s3:::{b}/img/*.png"]}}]}}"#
        ))
        .send()
        .await
        .expect("policy accepted");
    for (key, status) in [
        ("index.html", 200),
        ("index.html2", 403),
        ("img/a.png", 200),
        ("img/deep/b.png", 200),
        ("img/a.png.bak", 403),
    ] {
        let r = anonymous_get(&store, &format!("/{b}/{key}")).await;
        assert_eq!(r.status, status, "{key}");
    }
}

#[tokio::test]
async fn policies_that_cannot_be_enforced_exactly_are_refused() {
    let store = TestStore::start();
    let s3 = store.client();
    let b = store.bucket(&s3, "refuse").await;
    put_bytes(&s3, &b, "private/b.txt", b"secret".to_vec()).await;
    let object = format!("arn:aws:s3:::{b}/*");
    let refused = [
        // Another bucket's objects.
        (
            policy("arn:aws:s3:::other/*", "s3:GetObject"),
            400,
            "MalformedPolicy",
        ),
        // Conditions, Deny, other actions and principals are not enforced yet.
        (
            format!(
                r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"{object}","Condition":{{"IpAddress":{{"aws:SourceIp":"10.0.0.0/8"}}}}}}]}}"#
            ),
            501,
            "NotImplemented",
        ),
        (policy(&object, "s3:Get*"), 501, "NotImplemented"),
        (policy(&object, "s3:PutObject"), 501, "NotImplemented"),
        (
            policy(&object, "s3:GetObject").replace("Allow", "Deny"),
            501,
            "NotImplemented",
        ),
        (
            policy(&object, "s3:GetObject").replace(
                r#""Principal":"*""#,
                r#""Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"}"#,
            ),
            501,
            "NotImplemented",
        ),
        (
            policy(&object, "s3:GetObject").replace("\"Resource\"", "\"NotResource\""),
            501,
            "NotImplemented",
        ),
    ];
    for (text, status, code) in refused {
        let r = s3.put_bucket_policy().bucket(&b).policy(&text).send().await;
        assert_sdk_err(r, status, code);
        // Never stored: nothing became readable.
        assert_sdk_err(
            s3.get_bucket_policy().bucket(&b).send().await,
            404,
            "NoSuchBucketPolicy",
        );
        anonymous_get(&store, &format!("/{b}/private/b.txt"))
            .await
            .assert_error(403, "AccessDenied");
    }
}
