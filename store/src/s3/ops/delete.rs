//! DeleteObject and DeleteObjects.

use http::StatusCode;
use md5::{Digest, Md5};

use crate::access::{self, Principal};
use crate::engine::{WriteCondition, checksum};
use crate::error::{Code, Error, Result};
use crate::s3::xml::{self, XmlWriter};
use crate::s3::{
    MAX_KEY_LENGTH, Req, Response, S3, authorize, empty_response, headers, xml_response,
};

/// S3 caps a DeleteObjects request at 1000 keys.
const MAX_DELETE_KEYS: usize = 1000;
/// 1000 keys of up to 1024 bytes, with XML around them.
const MAX_DELETE_BODY: usize = 2 << 20;

pub async fn delete_object(s3: &S3, req: Req) -> Result<Response> {
    let cond = headers::delete_condition(&req.headers)?;
    s3.engine
        .delete_object(req.bucket(), req.key(), cond)
        .await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn delete_objects(s3: &S3, mut req: Req) -> Result<Response> {
    let body = xml::read_small_body(req.take_body(), MAX_DELETE_BODY).await?;
    check_body_integrity(&req, &body)?;
    let delete: xml::Delete = xml::parse(&body)?;
    if delete.objects.is_empty() || delete.objects.len() > MAX_DELETE_KEYS {
        return Err(Error::new(Code::MalformedXML));
    }
    // Each entry is deleted under its own conditions, or answered with its own error.
    let mut outcomes: Vec<(String, Result<()>)> = Vec::new();
    let mut valid = Vec::new();
    // The request was authorised on the bucket; each key is decided on its own ARN, so a
    // policy Deny on some keys holds (the root key is decided without a policy).
    let bucket = match req.facts.principal {
        Principal::Root => None,
        ref principal => Some(authorize::Bucket::load(s3, req.bucket(), principal).await),
    };
    for o in delete.objects {
        let allowed = bucket.as_ref().is_none_or(|bucket| {
            let arn = access::resource_arn(req.bucket(), &o.key);
            let asked = req.facts.asking(req.facts.action, arn);
            bucket.decide(&asked).is_allowed()
        });
        match entry_condition(&o) {
            Ok(_) if !allowed => outcomes.push((o.key, Err(Error::new(Code::AccessDenied)))),
            Ok(cond) => valid.push((o.key, cond)),
            Err(e) => outcomes.push((o.key, Err(e))),
        }
    }
    let keys: Vec<String> = valid.iter().map(|(k, _)| k.clone()).collect();
    let deleted = s3.engine.delete_objects(req.bucket(), valid).await?;
    outcomes.splice(
        0..0,
        keys.into_iter()
            .zip(deleted.into_iter().map(|r| r.map_err(Error::from))),
    );

    let mut w = XmlWriter::new("DeleteResult");
    for (key, outcome) in &outcomes {
        match outcome {
            Ok(()) if delete.quiet => {}
            Ok(()) => {
                w.open("Deleted").elem("Key", key).close();
            }
            Err(e) => {
                w.open("Error")
                    .elem("Key", key)
                    .elem("Code", e.code.as_str())
                    .elem("Message", e.message())
                    .close();
            }
        }
    }
    Ok(xml_response(w.finish()))
}

/// A DeleteObjects entry's key checks and its conditions (`ETag`, `LastModifiedTime`, `Size`).
fn entry_condition(o: &xml::DeleteEntry) -> Result<WriteCondition> {
    if o.key.len() > MAX_KEY_LENGTH {
        return Err(Error::new(Code::KeyTooLongError));
    }
    if !matches!(o.version_id.as_deref(), None | Some("null")) {
        return Err(Error::msg(
            Code::InvalidArgument,
            "Invalid version id specified",
        ));
    }
    let if_match_last_modified = match &o.last_modified_time {
        Some(t) => Some(
            xml::parse_iso8601(t)
                .ok_or_else(|| Error::msg(Code::InvalidArgument, "Invalid LastModifiedTime"))?,
        ),
        None => None,
    };
    Ok(WriteCondition {
        if_match: o.etag.as_ref().map(|e| e.trim().to_owned()),
        if_match_last_modified,
        if_match_size: o.size,
        ..WriteCondition::default()
    })
}

/// DeleteObjects (and PutBucketCors) must carry Content-MD5 or (since 2025's SDK defaults) an
/// `x-amz-checksum-*` of its body; either must match.
pub(super) fn check_body_integrity(req: &Req, body: &[u8]) -> Result<()> {
    let integrity = headers::integrity(&req.headers)?;
    if let Some(md5) = integrity.content_md5 {
        if md5 != <[u8; 16]>::from(Md5::digest(body)) {
            return Err(Error::new(Code::BadDigest));
        }
        return Ok(());
    }
    let expected = match (integrity.expected, integrity.trailer) {
        (Some(v), _) => v,
        (None, Some(algorithm)) => {
            let value = req.trailers.get(algorithm.header()).unwrap_or_default();
            checksum::ChecksumValue::from_base64(algorithm, &value)
                .ok_or_else(|| Error::new(Code::InvalidRequest))?
        }
        (None, None) => {
            return Err(Error::msg(
                Code::InvalidRequest,
                "Missing required header for this request: Content-MD5",
            ));
        }
    };
    let actual = checksum::checksum(expected.algorithm, body);
    if actual != expected {
        return Err(Error::msg(
            Code::BadDigest,
            format!(
                "The {} you specified did not match the calculated checksum.",
                expected.algorithm.name()
            ),
        ));
    }
    Ok(())
}
