//! Each class of right, refused to a key without it and allowed once granted (aws-sdk-s3 against
//! a real store): read (GetObject, HeadObject, ListObjectsV2), write (PutObject, DeleteObject,
//! multipart), owner (bucket policy, website, DeleteBucket), create-bucket, a copy's read on its
//! source, and operations no grant covers (root only). A refusal is AccessDenied, whether or
//! not the object or bucket exists.

use aws_sdk_s3::types::{IndexDocument, Tag, Tagging, WebsiteConfiguration};

use crate::common::keys::{create_key, key_ok};
use crate::common::*;

/// A store, its root client, a bucket holding `o`, and a key `app` with no rights.
struct Fixture {
    store: TestStore,
    root: aws_sdk_s3::Client,
    app: aws_sdk_s3::Client,
    bucket: String,
}

impl Fixture {
    async fn new() -> Fixture {
        let (store, root, bucket) = TestStore::with_bucket("grants").await;
        put_bytes(&root, &bucket, "o", b"hello").await;
        let (id, secret) = create_key(&store, "app", &[]);
        let app = client_for(&store.url, &id, &secret);
        Fixture {
            store,
            root,
            app,
            bucket,
        }
    }

    fn allow(&self, bucket: &str, rights: &[&str]) {
        let mut args = vec!["allow", "app", "--bucket", bucket];
        args.extend_from_slice(rights);
        key_ok(&self.store, &args);
    }
}

#[track_caller]
fn refused<T: std::fmt::Debug, E>(
    r: Result<T, aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
) where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
{
    assert_sdk_err(r, 403, "AccessDenied");
}

#[tokio::test]
async fn read_is_refused_then_allowed() {
    let f = Fixture::new().await;
    let (app, b) = (&f.app, f.bucket.as_str());
    f.allow(b, &["--write", "--owner"]);
    refused(app.get_object().bucket(b).key("o").send().await);
    refused(app.list_objects_v2().bucket(b).send().await);
    refused(
        app.get_object_attributes()
            .bucket(b)
            .key("o")
            .object_attributes(aws_sdk_s3::types::ObjectAttributes::Etag)
            .send()
            .await,
    );
    let head = app.head_object().bucket(b).key("o").send().await;
    assert_eq!(sdk_err(head).0, 403);

    f.allow(b, &["--read"]);
    let got = app.get_object().bucket(b).key("o").send().await.unwrap();
    assert_eq!(read_body(got.body).await, b"hello");
    let listed = app.list_objects_v2().bucket(b).send().await.unwrap();
    assert_eq!(listed.key_count(), Some(1));
    app.head_object().bucket(b).key("o").send().await.unwrap();
}

#[tokio::test]
async fn write_is_refused_then_allowed() {
    let f = Fixture::new().await;
    let (app, b) = (&f.app, f.bucket.as_str());
    f.allow(b, &["--read", "--owner"]);
    refused(
        app.put_object()
            .bucket(b)
            .key("n")
            .body(body(b"x".to_vec()))
            .send()
            .await,
    );
    refused(app.delete_object().bucket(b).key("o").send().await);
    refused(
        app.create_multipart_upload()
            .bucket(b)
            .key("m")
            .send()
            .await,
    );
    // The root's upload is not the key's to add parts to or abort either.
    let upload = start_upload(&f.root, b, "m").await;
    let part = || {
        let part = app.upload_part().bucket(b).key("m").upload_id(&upload);
        part.part_number(1).body(body(b"p".to_vec())).send()
    };
    refused(part().await);
    refused(
        app.abort_multipart_upload()
            .bucket(b)
            .key("m")
            .upload_id(&upload)
            .send()
            .await,
    );

    f.allow(b, &["--write"]);
    put_bytes(app, b, "n", b"x").await;
    let parts = upload_parts(app, b, "m", &upload, &[b"p"]).await;
    complete_upload(app, b, "m", &upload, parts).await;
    app.delete_object().bucket(b).key("o").send().await.unwrap();
    assert_eq!(object_bytes(&f.root, b, "m").await, b"p");
}

#[tokio::test]
async fn owner_is_refused_then_allowed() {
    let f = Fixture::new().await;
    let (app, b) = (&f.app, f.bucket.as_str());
    f.allow(b, &["--read", "--write"]);
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*"}}]}}"#
    );
    let website = WebsiteConfiguration::builder()
        .index_document(
            IndexDocument::builder()
                .suffix("index.html")
                .build()
                .unwrap(),
        )
        .build();
    refused(
        app.put_bucket_policy()
            .bucket(b)
            .policy(&policy)
            .send()
            .await,
    );
    refused(app.get_bucket_policy().bucket(b).send().await);
    refused(
        app.put_bucket_website()
            .bucket(b)
            .website_configuration(website.clone())
            .send()
            .await,
    );
    refused(app.get_bucket_acl().bucket(b).send().await);
    f.root
        .delete_object()
        .bucket(b)
        .key("o")
        .send()
        .await
        .unwrap();
    refused(app.delete_bucket().bucket(b).send().await);

    f.allow(b, &["--owner"]);
    app.put_bucket_website()
        .bucket(b)
        .website_configuration(website)
        .send()
        .await
        .unwrap();
    app.get_bucket_website().bucket(b).send().await.unwrap();
    app.get_bucket_acl().bucket(b).send().await.unwrap();
    app.delete_bucket().bucket(b).send().await.unwrap();
    assert_sdk_err(f.root.head_bucket().bucket(b).send().await, 404, "NotFound");
}

#[tokio::test]
async fn create_bucket_is_refused_then_allowed() {
    let f = Fixture::new().await;
    let app = &f.app;
    let name = unique_bucket("made");
    refused(app.create_bucket().bucket(&name).send().await);
    key_ok(&f.store, &["allow", "app", "--create-bucket"]);
    app.create_bucket().bucket(&name).send().await.unwrap();
    put_bytes(app, &name, "k", b"mine").await;
}

#[tokio::test]
async fn a_copy_needs_read_on_its_source() {
    let f = Fixture::new().await;
    let (app, src) = (&f.app, f.bucket.as_str());
    let dst = f.store.bucket(&f.root, "dst").await;
    f.allow(&dst, &["--read", "--write"]);
    let upload = start_upload(app, &dst, "u").await;
    let copy = |key: &str| {
        let source = format!("{src}/{key}");
        app.copy_object()
            .bucket(&dst)
            .key("c")
            .copy_source(source)
            .send()
    };
    let copy_part = || {
        let part = app
            .upload_part_copy()
            .bucket(&dst)
            .key("u")
            .upload_id(&upload);
        part.part_number(1).copy_source(format!("{src}/o")).send()
    };
    refused(copy("o").await);
    refused(copy_part().await);
    // Nor does a missing source say it is missing.
    refused(copy("none").await);

    f.allow(src, &["--read"]);
    copy("o").await.unwrap();
    assert_eq!(object_bytes(&f.root, &dst, "c").await, b"hello");
    copy_part().await.unwrap();
    assert_sdk_err(copy("none").await, 404, "NoSuchKey");
}

/// An operation no grant covers (one the store does not implement) is the root key's alone:
/// the root hears NotImplemented, a key with every right AccessDenied.
#[tokio::test]
async fn what_no_grant_covers_stays_the_root_keys() {
    let f = Fixture::new().await;
    let b = f.bucket.as_str();
    f.allow(b, &["--read", "--write", "--owner"]);
    let tagging = Tagging::builder()
        .tag_set(Tag::builder().key("k").value("v").build().unwrap())
        .build()
        .unwrap();
    refused(
        f.app
            .put_bucket_tagging()
            .bucket(b)
            .tagging(tagging.clone())
            .send()
            .await,
    );
    assert_sdk_err(
        f.root
            .put_bucket_tagging()
            .bucket(b)
            .tagging(tagging)
            .send()
            .await,
        501,
        "NotImplemented",
    );
}

/// Grants and bucket policies are one decision: a policy Allow naming the key (by name or by
/// id) or everyone permits without a grant, and a policy Deny wins over a grant.
#[tokio::test]
async fn grants_and_policies_are_joined_as_aws_evaluates_them() {
    let f = Fixture::new().await;
    let (app, b) = (&f.app, f.bucket.as_str());
    let policy =
        |statements: &str| format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#);
    let set = async |text: String| {
        f.root
            .put_bucket_policy()
            .bucket(b)
            .policy(text)
            .send()
            .await
            .unwrap();
    };
    refused(app.get_object().bucket(b).key("o").send().await);

    // The key by its name, no grant: allowed to read, nothing else.
    set(policy(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":["arn:aws:iam:::user/app"]}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*"}}"#
    )))
    .await;
    app.get_object().bucket(b).key("o").send().await.unwrap();
    refused(
        app.put_object()
            .bucket(b)
            .key("n")
            .body(body("x"))
            .send()
            .await,
    );

    // Everyone: the key reads through the public statement too.
    set(policy(&format!(
        r#"{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*"}}"#
    )))
    .await;
    app.get_object().bucket(b).key("o").send().await.unwrap();

    // A grant, and a Deny naming the key: the Deny wins for what it names only.
    f.allow(b, &["--read", "--write"]);
    set(policy(&format!(
        r#"{{"Effect":"Deny","Principal":{{"AWS":"arn:aws:iam:::user/app"}},"Action":"s3:PutObject","Resource":"arn:aws:s3:::{b}/locked/*"}}"#
    )))
    .await;
    refused(
        app.put_object()
            .bucket(b)
            .key("locked/x")
            .body(body("x"))
            .send()
            .await,
    );
    app.put_object()
        .bucket(b)
        .key("open/x")
        .body(body("x"))
        .send()
        .await
        .unwrap();
    app.get_object().bucket(b).key("o").send().await.unwrap();
    // The root key is not subject to the policy.
    f.root
        .put_object()
        .bucket(b)
        .key("locked/x")
        .body(body("x"))
        .send()
        .await
        .unwrap();
}
