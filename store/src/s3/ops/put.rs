//! PutObject (and the store of a form upload's file, [`super::post`]).

use crate::engine::{ObjectInfo, PutOptions, StoredChecksum};
use crate::error::{Code, Error, Result};
use crate::s3::headers::{self, quote_etag};
use crate::s3::{Req, Response, S3};

pub async fn put_object(s3: &S3, req: Req) -> Result<Response> {
    let info = store(s3, req).await?;
    Ok(etag_response(&info.etag, info.checksum.as_ref()))
}

/// Stores the request's body as its object (PutObject's work; a form upload's too).
pub async fn store(s3: &S3, mut req: Req) -> Result<ObjectInfo> {
    check_declared_size(s3, &req)?;
    check_write_headers(&req)?;
    let integrity = headers::integrity(&req.headers)?;
    let opts = PutOptions {
        headers: headers::object_headers(&req.headers)?,
        checksum: integrity.algorithm,
        condition: headers::write_condition(&req.headers)?,
    };
    let verify = integrity.into_verify(req.trailers.clone());
    let body = req.take_body();
    Ok(s3
        .engine
        .put_object(req.bucket(), req.key(), opts, body, verify)
        .await?)
}

/// 200 with the ETag (and checksum) headers: the answer to PutObject and UploadPart.
pub fn etag_response(etag: &str, checksum: Option<&StoredChecksum>) -> Response {
    let mut response = crate::s3::empty_response(http::StatusCode::OK);
    let h = response.headers_mut();
    if let Ok(v) = http::HeaderValue::from_str(&quote_etag(etag)) {
        h.insert(http::header::ETAG, v);
    }
    if let Some(c) = checksum {
        headers::write_checksum_headers(h, c);
    }
    response
}

/// Refuses a body declared larger than the limit, or than the free space, before reading
/// any of it.
pub fn check_declared_size(s3: &S3, req: &Req) -> Result<()> {
    match req.content_length() {
        Some(n) if n > s3.config.max_object_size => Err(Error::new(Code::EntityTooLarge)),
        Some(n) => Ok(s3.engine.check_room(n)?),
        None => Ok(()),
    }
}

/// What a write may ask for that the store does not do yet: refused with NotImplemented,
/// never accepted and silently dropped (the object would lack what the client was told it
/// has). Then the storage class: every object is stored the same way; we accept the class
/// names clients send and report STANDARD.
pub fn check_write_headers(req: &Req) -> Result<()> {
    const UNSUPPORTED: &[(&str, &str)] = &[
        ("x-amz-tagging", "Object tagging"),
        ("x-amz-object-lock-mode", "Object lock"),
        ("x-amz-object-lock-retain-until-date", "Object lock"),
        ("x-amz-object-lock-legal-hold", "Object lock"),
        ("x-amz-server-side-encryption", "Server-side encryption"),
        (
            "x-amz-server-side-encryption-aws-kms-key-id",
            "Server-side encryption",
        ),
        (
            "x-amz-server-side-encryption-customer-algorithm",
            "Server-side encryption",
        ),
        (
            "x-amz-copy-source-server-side-encryption-customer-algorithm",
            "Server-side encryption",
        ),
    ];
    let refuse = |name: &str, what: &str| {
        Err(Error::msg(
            Code::NotImplemented,
            format!("{what} is not supported yet ({name})."),
        ))
    };
    if let Some((name, what)) = UNSUPPORTED
        .iter()
        .find(|(name, _)| req.header(name).is_some())
    {
        return refuse(name, what);
    }
    let directive = req.header("x-amz-tagging-directive");
    if directive.is_some_and(|d| d.eq_ignore_ascii_case("REPLACE")) {
        return refuse("x-amz-tagging-directive", "Object tagging");
    }
    check_storage_class(req)
}

fn check_storage_class(req: &Req) -> Result<()> {
    const CLASSES: &[&str] = &[
        "STANDARD",
        "REDUCED_REDUNDANCY",
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "GLACIER",
        "DEEP_ARCHIVE",
        "GLACIER_IR",
        "OUTPOSTS",
        "SNOW",
        "EXPRESS_ONEZONE",
    ];
    match req.header("x-amz-storage-class") {
        Some(class) if !CLASSES.contains(&class) => Err(Error::new(Code::InvalidStorageClass)),
        _ => Ok(()),
    }
}
