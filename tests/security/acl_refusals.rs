//! `aws s3 cp --acl public-read` was accepted and silently ignored (issue 11). ACLs are now
//! disabled as in AWS's default Object Ownership (bucket owner enforced): an ACL granting
//! anyone but the owner is refused with AWS's error, and nothing is created; `private` and
//! `bucket-owner-full-control` (rclone sends `x-amz-acl: private`) keep working.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketCannedAcl, ObjectCannedAcl, ObjectOwnership};

use crate::common::*;

#[tokio::test]
async fn public_acls_are_refused_with_awss_errors_and_private_works() {
    let store = TestStore::start();
    let s3 = store.client();
    let refused = unique_bucket("aclpub");
    let r = s3
        .create_bucket()
        .bucket(&refused)
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await;
    assert_sdk_err(r, 400, "InvalidBucketAclWithObjectOwnership");
    assert_sdk_err(
        s3.head_bucket().bucket(&refused).send().await,
        404,
        "NotFound",
    );
    // Only ACLs disabled is served: asking for ACLs enabled is refused, not ignored.
    let r = s3
        .create_bucket()
        .bucket(&refused)
        .object_ownership(ObjectOwnership::ObjectWriter)
        .send()
        .await;
    assert_sdk_err(r, 501, "NotImplemented");
    assert_sdk_err(
        s3.head_bucket().bucket(&refused).send().await,
        404,
        "NotFound",
    );
    s3.create_bucket()
        .bucket(&refused)
        .object_ownership(ObjectOwnership::BucketOwnerEnforced)
        .send()
        .await
        .expect("CreateBucket with BucketOwnerEnforced");
    let b = unique_bucket("aclpriv");
    s3.create_bucket()
        .bucket(&b)
        .acl(BucketCannedAcl::Private)
        .send()
        .await
        .expect("CreateBucket with a private ACL");

    for acl in [
        ObjectCannedAcl::PublicRead,
        ObjectCannedAcl::AuthenticatedRead,
    ] {
        let r = s3
            .put_object()
            .bucket(&b)
            .key("k")
            .acl(acl.clone())
            .body(ByteStream::from_static(b"x"))
            .send()
            .await;
        assert_sdk_err(r, 400, "AccessControlListNotSupported");
        let r = s3
            .create_multipart_upload()
            .bucket(&b)
            .key("k")
            .acl(acl)
            .send()
            .await;
        assert_sdk_err(r, 400, "AccessControlListNotSupported");
    }
    assert_sdk_err(
        s3.head_object().bucket(&b).key("k").send().await,
        404,
        "NotFound",
    );
    for acl in [
        ObjectCannedAcl::Private,
        ObjectCannedAcl::BucketOwnerFullControl,
    ] {
        s3.put_object()
            .bucket(&b)
            .key("k")
            .acl(acl)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect("PutObject with an owner-only ACL");
    }
    let r = s3
        .copy_object()
        .bucket(&b)
        .key("copy")
        .copy_source(format!("{b}/k"))
        .acl(ObjectCannedAcl::PublicReadWrite)
        .send()
        .await;
    assert_sdk_err(r, 400, "AccessControlListNotSupported");
    let r = s3
        .put_object()
        .bucket(&b)
        .key("granted")
        .grant_read("uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_sdk_err(r, 400, "AccessControlListNotSupported");
    for key in ["copy", "granted"] {
        assert_sdk_err(
            s3.head_object().bucket(&b).key(key).send().await,
            404,
            "NotFound",
        );
    }

    let r = s3
        .put_bucket_acl()
        .bucket(&b)
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await;
    assert_sdk_err(r, 400, "AccessControlListNotSupported");
    let r = s3
        .put_object_acl()
        .bucket(&b)
        .key("k")
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await;
    assert_sdk_err(r, 400, "AccessControlListNotSupported");
    s3.put_bucket_acl()
        .bucket(&b)
        .acl(BucketCannedAcl::Private)
        .send()
        .await
        .expect("PutBucketAcl private");
    // An ACL document granting AllUsers READ.
    let body = r#"<AccessControlPolicy><Owner><ID>o</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>"#;
    RawRequest::new("PUT", &format!("/{b}?acl"))
        .body(body)
        .sign(&store)
        .send(&store)
        .await
        .assert_error(400, "AccessControlListNotSupported");
    // Nothing became public.
    RawRequest::new("GET", &format!("/{b}/k"))
        .send(&store)
        .await
        .assert_error(403, "AccessDenied");
}
