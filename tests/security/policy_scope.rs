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
    // Listing granted for the public prefix only (`s3:prefix`), as the AWS docs' example.
    s3.put_bucket_policy()
        .bucket(&b)
        .policy(format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/public/*"}},{{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::{b}","Condition":{{"StringLike":{{"s3:prefix":"public/*"}}}}}}]}}"#
        ))
        .send()
        .await
        .expect("a prefix-scoped list policy is accepted");
    for server in [&pair.store, &pair.edge] {
        let listed = anonymous_get(server, &format!("/{b}?list-type=2&prefix=public/")).await;
        assert_eq!(listed.status, 200, "{}", listed.text());
        assert_eq!(listed.xml_all("Key"), ["public/a.txt", "public/sub/c.txt"]);
        for query in [
            "list-type=2",
            "list-type=2&prefix=private/",
            "list-type=2&prefix=p",
        ] {
            anonymous_get(server, &format!("/{b}?{query}"))
                .await
                .assert_error(403, "AccessDenied");
        }
        let r = anonymous_get(server, &format!("/{b}/private/b.txt?after=list")).await;
        r.assert_error(403, "AccessDenied");
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
async fn policies_that_cannot_be_enforced_exactly_are_refused_naming_the_element() {
    let store = TestStore::start();
    let s3 = store.client();
    let b = store.bucket(&s3, "refuse").await;
    put_bytes(&s3, &b, "private/b.txt", b"secret".to_vec()).await;
    let object = format!("arn:aws:s3:::{b}/*");
    let with_condition = |condition: &str| {
        format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"{object}","Condition":{condition}}}]}}"#
        )
    };
    let refused = [
        (
            policy("arn:aws:s3:::other/*", "s3:GetObject"),
            "invalid resource",
        ),
        (policy(&object, "iam:PassRole"), "invalid action"),
        (
            with_condition(r#"{"ArnLike":{"aws:SourceArn":"arn:aws:s3:::x"}}"#),
            "ArnLike",
        ),
        (
            with_condition(r#"{"StringEquals":{"aws:SourceVpce":"vpce-1"}}"#),
            "aws:SourceVpce",
        ),
        (
            with_condition(r#"{"StringLikeIfExists":{"aws:Referer":"x"}}"#),
            "IfExists",
        ),
        (
            with_condition(r#"{"ForAnyValue:StringLike":{"aws:Referer":"x"}}"#),
            "ForAnyValue",
        ),
        (
            with_condition(r#"{"IpAddress":{"aws:Referer":"10.0.0.0/8"}}"#),
            "aws:Referer",
        ),
        (
            policy(&object, "s3:GetObject").replace(r#""Principal""#, r#""NotPrincipal""#),
            "NotPrincipal",
        ),
        (
            policy(&object, "s3:GetObject").replace(
                r#""Principal":"*""#,
                r#""Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"}"#,
            ),
            "principal",
        ),
        (
            policy(&object, "s3:GetObject").replace(
                r#""Principal":"*""#,
                r#""Principal":{"Service":"logging.s3.amazonaws.com"}"#,
            ),
            "Service",
        ),
        (
            policy(
                &format!("arn:aws:s3:::{b}/${{aws:username}}/*"),
                "s3:GetObject",
            ),
            "Policy variables",
        ),
    ];
    for (text, named) in refused {
        let r = RawRequest::new("PUT", &format!("/{b}?policy"))
            .body(text.clone())
            .sign(&store)
            .send(&store)
            .await;
        r.assert_error(400, "MalformedPolicy");
        let message = r.xml("Message").unwrap_or_default();
        assert!(
            message.contains(named),
            "{text}: {message:?} should name {named}"
        );
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
