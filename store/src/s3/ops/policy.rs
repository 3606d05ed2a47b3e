//! Bucket policy (parsed and validated by [`crate::access::policy`] when it is put), its
//! public status, the bucket's Block Public Access settings, and the bucket website document
//! (stored here, served by the edge).

use http::StatusCode;
use serde::Deserialize;

use crate::access::policy::{MAX_POLICY_BYTES, too_large};
use crate::access::{Policy, PublicAccessBlock};
use crate::engine::BucketSettings;
use crate::error::{Code, Error, Result};
use crate::s3::xml::XmlWriter;
use crate::s3::{Req, Response, S3, empty_response, xml, xml_response};

const MAX_WEBSITE_BYTES: usize = 128 << 10;
const MAX_PUBLIC_ACCESS_BLOCK_BYTES: usize = 16 << 10;

/// The stored policy of a bucket, parsed (see [`Policy::stored`]: one this build refuses
/// denies all but root).
pub fn stored_policy(bucket: &str, settings: &BucketSettings) -> Option<Policy> {
    let text = settings.policy.as_deref()?;
    Some(Policy::stored(bucket, text))
}

pub async fn get_policy(s3: &S3, req: Req) -> Result<Response> {
    let bucket = s3.engine.bucket(req.bucket()).await?;
    let policy = bucket
        .settings
        .policy
        .ok_or_else(|| Error::new(Code::NoSuchBucketPolicy))?;
    Ok(http::Response::builder()
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONTENT_LENGTH, policy.len())
        .body(axum::body::Body::from(policy))
        .expect("valid response"))
}

/// PutBucketPolicy: the policy is parsed and validated whole, and refused (AccessDenied, as
/// AWS answers) when it is public and the bucket blocks public policies.
pub async fn put_policy(s3: &S3, mut req: Req) -> Result<Response> {
    // Declared too large: refused before it is read; a body of no declared length, once
    // past the limit.
    if req
        .content_length()
        .is_some_and(|n| n > MAX_POLICY_BYTES as u64)
    {
        return Err(too_large());
    }
    let body = xml::read_body_within(req.take_body(), MAX_POLICY_BYTES, too_large).await?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| Error::new(Code::MalformedPolicy))?;
    let policy = Policy::parse(req.bucket(), &text)?;
    let bucket = s3.engine.bucket(req.bucket()).await?;
    let block = bucket.settings.public_access_block.unwrap_or_default();
    if block.block_public_policy && policy.is_public() {
        return Err(Error::msg(
            Code::AccessDenied,
            "Access Denied: the bucket's BlockPublicPolicy setting refuses a public policy.",
        ));
    }
    update(s3, &req, |s| s.policy = Some(text)).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// GetBucketPolicyStatus: whether the policy is public, as AWS defines it.
pub async fn get_policy_status(s3: &S3, req: Req) -> Result<Response> {
    let bucket = s3.engine.bucket(req.bucket()).await?;
    if bucket.settings.policy.is_none() {
        return Err(Error::new(Code::NoSuchBucketPolicy));
    }
    let public = stored_policy(req.bucket(), &bucket.settings).is_some_and(|p| p.is_public());
    let mut w = XmlWriter::new("PolicyStatus");
    w.elem("IsPublic", public);
    Ok(xml_response(w.finish()))
}

/// `PublicAccessBlockConfiguration`, as PutPublicAccessBlock sends it (absent elements false).
/// An element of another name is MalformedXML ("did not validate against our published
/// schema"), as at AWS: a misspelt `BlockPublicPolicies` must not be stored as "block
/// nothing".
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct PublicAccessBlockConfiguration {
    #[serde(rename = "@xmlns", default)]
    _xmlns: Option<String>,
    #[serde(default)]
    block_public_acls: bool,
    #[serde(default)]
    ignore_public_acls: bool,
    #[serde(default)]
    block_public_policy: bool,
    #[serde(default)]
    restrict_public_buckets: bool,
}

pub async fn put_public_access_block(s3: &S3, mut req: Req) -> Result<Response> {
    let body = xml::read_small_body(req.take_body(), MAX_PUBLIC_ACCESS_BLOCK_BYTES).await?;
    check_well_formed_body(&body, "PublicAccessBlockConfiguration")?;
    let c: PublicAccessBlockConfiguration = xml::parse(&body)?;
    let block = PublicAccessBlock {
        block_public_acls: c.block_public_acls,
        ignore_public_acls: c.ignore_public_acls,
        block_public_policy: c.block_public_policy,
        restrict_public_buckets: c.restrict_public_buckets,
    };
    update(s3, &req, |s| s.public_access_block = Some(block)).await?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn get_public_access_block(s3: &S3, req: Req) -> Result<Response> {
    let bucket = s3.engine.bucket(req.bucket()).await?;
    let b = bucket
        .settings
        .public_access_block
        .ok_or_else(|| Error::new(Code::NoSuchPublicAccessBlockConfiguration))?;
    let mut w = XmlWriter::new("PublicAccessBlockConfiguration");
    w.elem("BlockPublicAcls", b.block_public_acls)
        .elem("IgnorePublicAcls", b.ignore_public_acls)
        .elem("BlockPublicPolicy", b.block_public_policy)
        .elem("RestrictPublicBuckets", b.restrict_public_buckets);
    Ok(xml_response(w.finish()))
}

pub async fn delete_public_access_block(s3: &S3, req: Req) -> Result<Response> {
    update(s3, &req, |s| s.public_access_block = None).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn delete_policy(s3: &S3, req: Req) -> Result<Response> {
    update(s3, &req, |s| s.policy = None).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn get_website(s3: &S3, req: Req) -> Result<Response> {
    let bucket = s3.engine.bucket(req.bucket()).await?;
    let website = bucket
        .settings
        .website
        .ok_or_else(|| Error::new(Code::NoSuchWebsiteConfiguration))?;
    Ok(xml_response(website))
}

pub async fn put_website(s3: &S3, mut req: Req) -> Result<Response> {
    let body = xml::read_small_body(req.take_body(), MAX_WEBSITE_BYTES).await?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| Error::new(Code::MalformedXML))?;
    check_well_formed(&text, "WebsiteConfiguration")?;
    update(s3, &req, |s| s.website = Some(text)).await?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn delete_website(s3: &S3, req: Req) -> Result<Response> {
    update(s3, &req, |s| s.website = None).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// Changes the settings of the request's bucket (NoSuchBucket if it has gone).
pub(super) async fn update(
    s3: &S3,
    req: &Req,
    change: impl FnOnce(&mut BucketSettings),
) -> Result<()> {
    let mut bucket = s3.engine.bucket(req.bucket()).await?;
    change(&mut bucket.settings);
    Ok(s3
        .engine
        .set_bucket_settings(req.bucket(), bucket.settings)
        .await?)
}

fn check_well_formed_body(body: &[u8], root: &str) -> Result<()> {
    let text = std::str::from_utf8(body).map_err(|_| Error::new(Code::MalformedXML))?;
    check_well_formed(text, root)
}

/// The document parses as XML and its root element is `root`.
pub fn check_well_formed(text: &str, root: &str) -> Result<()> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut saw_root = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if !saw_root => {
                if e.local_name().as_ref() != root.as_bytes() {
                    return Err(Error::new(Code::MalformedXML));
                }
                saw_root = true;
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(_) => return Err(Error::new(Code::MalformedXML)),
        }
    }
    if saw_root {
        Ok(())
    } else {
        Err(Error::new(Code::MalformedXML))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn website_xml_must_be_well_formed() {
        check_well_formed("<WebsiteConfiguration xmlns=\"x\"><IndexDocument><Suffix>index.html</Suffix></IndexDocument></WebsiteConfiguration>", "WebsiteConfiguration").unwrap();
        assert!(
            check_well_formed(
                "<WebsiteConfiguration><a></WebsiteConfiguration>",
                "WebsiteConfiguration"
            )
            .is_err()
        );
        assert!(check_well_formed("<Other/>", "WebsiteConfiguration").is_err());
    }
}
