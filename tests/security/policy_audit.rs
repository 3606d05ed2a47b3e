//! Audit of issue 11's bucket policies: what the first version let through. A policy naming a
//! member twice was enforced as its last one (JSON keeps the last: a `Deny` written first and
//! an `Allow` after it came out an Allow, a second `IpAddress` dropped the first); a statement
//! whose action acts on none of its resources (`s3:GetObject` on the bucket's ARN), which AWS
//! refuses, was stored, matched nothing and was reported public, and so was an operation's
//! name that is no action (`s3:ListObjects`); a misspelt PutPublicAccessBlock element was
//! stored as "block nothing"; `aws:SourceIp` over IPv6 was only unit-tested.

use crate::common::*;
use crate::policy_eval::{anonymous, is_public, put_policy};

#[tokio::test]
async fn a_member_named_twice_or_an_action_on_no_resource_is_refused_and_the_old_policy_stays() {
    let store = TestStore::start();
    let s3 = store.client();
    let b = store.bucket(&s3, "twice").await;
    put_bytes(&s3, &b, "public/a.txt", b"a".to_vec()).await;
    put_bytes(&s3, &b, "private/b.txt", b"b".to_vec()).await;
    let public = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/public/*"}}]}}"#
    );
    put_policy(&s3, &b, &public).await;
    for (policy, named) in [
        (
            format!(
                r#"{{"Statement":[{{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*","Effect":"Allow"}}]}}"#
            ),
            "Effect",
        ),
        (
            format!(
                r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*","Condition":{{"IpAddress":{{"aws:SourceIp":"10.0.0.0/8"}},"IpAddress":{{"aws:SourceIp":"0.0.0.0/0"}}}}}}]}}"#
            ),
            "IpAddress",
        ),
        (
            format!(
                r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*","Condition":{{"StringLike":{{"aws:Referer":"https://site.example/*","aws:referer":"*"}}}}}}]}}"#
            ),
            "aws:referer",
        ),
        (
            format!(
                r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}"}}]}}"#
            ),
            "Action does not apply to any resource(s) in statement",
        ),
        // An operation's name, not its action (s3:ListBucket).
        (
            format!(
                r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:ListObjects","Resource":"arn:aws:s3:::{b}"}}]}}"#
            ),
            "Policy has invalid action: s3:ListObjects (the action for it is s3:ListBucket)",
        ),
    ] {
        let r = RawRequest::new("PUT", &format!("/{b}?policy"))
            .body(policy.clone())
            .sign(&store)
            .send(&store)
            .await;
        r.assert_error(400, "MalformedPolicy");
        let message = r.xml("Message").unwrap_or_default();
        assert!(message.contains(named), "{policy}: {message:?}");
    }
    let kept = s3.get_bucket_policy().bucket(&b).send().await.unwrap();
    assert_eq!(kept.policy(), Some(public.as_str()));
    assert_eq!(
        anonymous(&store, &format!("/{b}/private/b.txt"), &[]).await,
        403
    );
    assert_eq!(
        anonymous(&store, &format!("/{b}/public/a.txt"), &[]).await,
        200
    );
}

#[tokio::test]
async fn source_ip_conditions_hold_for_ipv6_clients() {
    // The store trusts the test's X-Forwarded-For as a load balancer's.
    let store = TestStore::start_with(
        StoreOptions::default().config("[store]\ntrusted_proxies = [\"127.0.0.1/32\"]\n"),
    );
    let s3 = store.client();
    let b = store.bucket(&s3, "ipsix").await;
    put_bytes(&s3, &b, "k", b"k".to_vec()).await;
    put_policy(
        &s3,
        &b,
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*",
              "Condition":{{"IpAddress":{{"aws:SourceIp":["2001:db8::/32","192.0.2.0/24"]}}}}}},
            {{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*",
              "Condition":{{"IpAddress":{{"aws:SourceIp":"2001:db8:dead::/48"}}}}}}]}}"#
        ),
    )
    .await;
    assert_eq!(is_public(&s3, &b).await, Some(false));
    let path = format!("/{b}/k");
    for (client, status) in [
        ("2001:db8::5", 200),
        ("2001:DB8:0:0::5", 200),
        ("[2001:db8::5]:443", 200),
        ("2001:db8:dead::1", 403),
        ("2001:db9::1", 403),
        ("192.0.2.9", 200),
        // An IPv4 client written as IPv6 is that IPv4 client.
        ("::ffff:192.0.2.9", 200),
        ("198.51.100.1", 403),
        // The client is the last address before the trusted proxy.
        ("2001:db8::5, 198.51.100.1", 403),
        ("198.51.100.1, 2001:db8::5", 200),
    ] {
        let got = anonymous(&store, &path, &[("x-forwarded-for", client)]).await;
        assert_eq!(got, status, "{client}");
    }
}

/// A PutPublicAccessBlock element of another name (a typo: `BlockPublicPolicies`) was
/// accepted and ignored, storing every setting false: the bucket owner believed public
/// policies blocked. AWS validates the document against its schema: MalformedXML.
#[tokio::test]
async fn a_public_access_block_with_an_unknown_element_is_malformed_xml() {
    let store = TestStore::start();
    let s3 = store.client();
    let b = store.bucket(&s3, "pabtypo").await;
    let put = |inner: &str| {
        RawRequest::new("PUT", &format!("/{b}?publicAccessBlock"))
            .body(format!(
                r#"<PublicAccessBlockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</PublicAccessBlockConfiguration>"#
            ))
            .sign(&store)
    };
    for inner in [
        "<BlockPublicPolicies>true</BlockPublicPolicies>",
        "<BlockPublicPolicy>true</BlockPublicPolicy><Extra/>",
    ] {
        put(inner)
            .send(&store)
            .await
            .assert_error(400, "MalformedXML");
        assert_sdk_err(
            s3.get_public_access_block().bucket(&b).send().await,
            404,
            "NoSuchPublicAccessBlockConfiguration",
        );
    }
    let r = put("<BlockPublicPolicy>true</BlockPublicPolicy>")
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = s3
        .get_public_access_block()
        .bucket(&b)
        .send()
        .await
        .unwrap();
    let config = got.public_access_block_configuration().unwrap();
    assert_eq!(config.block_public_policy(), Some(true));
    assert_eq!(config.restrict_public_buckets(), Some(false));
}
