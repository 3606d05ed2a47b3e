//! ACLs, as AWS's default Object Ownership ("bucket owner enforced", since April 2023) has
//! them: disabled. The owner has full control of everything, access is granted by bucket
//! policies, and a request that sets an ACL granting anyone else (a canned ACL other than
//! `private` / `bucket-owner-full-control`, an `x-amz-grant-*` header naming someone other
//! than the owner, an ACL document with such a grant) is refused: AccessControlListNotSupported,
//! or InvalidBucketAclWithObjectOwnership at CreateBucket. Reads of ACLs answer the owner's
//! full control.
//!
//! A bucket made `public-read` before ACLs were disabled keeps that public read (and shows it
//! in GetBucketAcl) until `IgnorePublicAcls` or a `private` PutBucketAcl.

use http::StatusCode;
use serde::Deserialize;

use crate::error::{Code, Error, Result};
use crate::s3::xml::{self, XmlWriter};
use crate::s3::{Req, Response, S3, empty_response, xml_response};

/// Canned ACLs AWS knows; only the first two grant no one but the owner.
const OWNER_ONLY: &[&str] = &["private", "bucket-owner-full-control"];
const OTHERS: &[&str] = &[
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "log-delivery-write",
];

/// Refuses ACL headers that grant anyone but `owner` (with `refusal`; an unknown canned ACL
/// is InvalidArgument).
pub fn check_headers(req: &Req, refusal: Code, owner: &str) -> Result<()> {
    match req.header("x-amz-acl") {
        None => {}
        Some(acl) if OWNER_ONLY.contains(&acl) => {}
        Some(acl) if OTHERS.contains(&acl) => return Err(Error::new(refusal)),
        Some(other) => {
            return Err(Error::msg(
                Code::InvalidArgument,
                format!("Invalid canned ACL: {other}"),
            ));
        }
    }
    for (name, value) in &req.headers {
        let Some(permission) = name.as_str().strip_prefix("x-amz-grant-") else {
            continue;
        };
        // `id="..."`, `uri="..."`, `emailAddress="..."`, comma-separated.
        let owner_only = permission == "full-control"
            && value.to_str().is_ok_and(|v| {
                v.split(',').all(|grantee| {
                    grantee
                        .trim()
                        .strip_prefix("id=")
                        .is_some_and(|id| id.trim_matches('"') == owner)
                })
            });
        if !owner_only {
            return Err(Error::new(refusal));
        }
    }
    Ok(())
}

/// The owner has full control; a legacy public-read bucket also grants AllUsers READ.
pub async fn get_acl(s3: &S3, req: Req) -> Result<Response> {
    let bucket = s3.engine.bucket(req.bucket()).await?;
    if !req.key().is_empty() {
        s3.engine.head_object(req.bucket(), req.key()).await?;
    }
    let ignored = bucket
        .settings
        .public_access_block
        .is_some_and(|b| b.ignore_public_acls);
    let mut w = XmlWriter::new("AccessControlPolicy");
    w.owner("Owner", &s3.owner_id)
        .open("AccessControlList")
        .open("Grant");
    w.raw("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">")
        .elem("ID", &s3.owner_id)
        .elem("DisplayName", &s3.owner_id)
        .raw("</Grantee>")
        .elem("Permission", "FULL_CONTROL")
        .close();
    if bucket.settings.public_read_acl && !ignored {
        w.open("Grant")
            .raw("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\">")
            .elem("URI", "http://acs.amazonaws.com/groups/global/AllUsers")
            .raw("</Grantee>")
            .elem("Permission", "READ")
            .close();
    }
    Ok(xml_response(w.finish()))
}

#[derive(Debug, Deserialize)]
struct AccessControlPolicy {
    #[serde(rename = "AccessControlList", default)]
    list: AccessControlList,
}

#[derive(Debug, Default, Deserialize)]
struct AccessControlList {
    #[serde(rename = "Grant", default)]
    grants: Vec<AclGrant>,
}

#[derive(Debug, Deserialize)]
struct AclGrant {
    #[serde(rename = "Grantee")]
    grantee: Grantee,
    #[serde(rename = "Permission")]
    permission: String,
}

#[derive(Debug, Deserialize)]
struct Grantee {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "URI")]
    uri: Option<String>,
    #[serde(rename = "EmailAddress")]
    email: Option<String>,
}

/// PutBucketAcl / PutObjectAcl: only the owner's full control may be set (a `private` ACL on
/// a legacy public-read bucket makes it private).
pub async fn put_acl(s3: &S3, mut req: Req) -> Result<Response> {
    check_headers(&req, Code::AccessControlListNotSupported, &s3.owner_id)?;
    let body = xml::read_small_body(req.take_body(), 64 << 10).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let policy: AccessControlPolicy = xml::parse(&body)?;
        let owner_only = policy.list.grants.iter().all(|g| {
            g.permission == "FULL_CONTROL"
                && g.grantee.uri.is_none()
                && g.grantee.email.is_none()
                && g.grantee.id.as_deref() == Some(s3.owner_id.as_str())
        });
        if !owner_only {
            return Err(Error::new(Code::AccessControlListNotSupported));
        }
    }
    let mut bucket = s3.engine.bucket(req.bucket()).await?;
    if !req.key().is_empty() {
        s3.engine.head_object(req.bucket(), req.key()).await?;
    } else if bucket.settings.public_read_acl {
        bucket.settings.public_read_acl = false;
        s3.engine
            .set_bucket_settings(req.bucket(), bucket.settings)
            .await?;
    }
    Ok(empty_response(StatusCode::OK))
}
