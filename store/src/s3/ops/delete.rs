//! DeleteObject and DeleteObjects.

use http::StatusCode;
use md5::{Digest, Md5};

use crate::engine::checksum;
use crate::error::{Code, Error, Result};
use crate::s3::xml::{self, XmlWriter};
use crate::s3::{MAX_KEY_LENGTH, Req, Response, S3, empty_response, headers, xml_response};

/// S3 caps a DeleteObjects request at 1000 keys.
const MAX_DELETE_KEYS: usize = 1000;
/// 1000 keys of up to 1024 bytes, with XML around them.
const MAX_DELETE_BODY: usize = 2 << 20;

pub async fn delete_object(s3: &S3, req: Req) -> Result<Response> {
    s3.engine.delete_object(req.bucket(), req.key()).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn delete_objects(s3: &S3, mut req: Req) -> Result<Response> {
    let body = xml::read_small_body(req.take_body(), MAX_DELETE_BODY).await?;
    check_body_integrity(&req, &body)?;
    let delete: xml::Delete = xml::parse(&body)?;
    if delete.objects.is_empty() || delete.objects.len() > MAX_DELETE_KEYS {
        return Err(Error::new(Code::MalformedXML));
    }
    let (valid, refused): (Vec<_>, Vec<_>) = delete.objects.into_iter().partition(|o| {
        o.key.len() <= MAX_KEY_LENGTH && matches!(o.version_id.as_deref(), None | Some("null"))
    });
    let keys: Vec<String> = valid.iter().map(|o| o.key.clone()).collect();
    s3.engine.delete_objects(req.bucket(), &keys).await?;

    let mut w = XmlWriter::new("DeleteResult");
    if !delete.quiet {
        for key in &keys {
            w.open("Deleted").elem("Key", key).close();
        }
    }
    for o in &refused {
        let (code, message) = if o.key.len() > MAX_KEY_LENGTH {
            (
                Code::KeyTooLongError,
                Code::KeyTooLongError.default_message(),
            )
        } else {
            (Code::InvalidArgument, "Invalid version id specified")
        };
        w.open("Error")
            .elem("Key", &o.key)
            .elem("Code", code.as_str())
            .elem("Message", message)
            .close();
    }
    Ok(xml_response(w.finish()))
}

/// DeleteObjects must carry Content-MD5 or (since 2025's SDK defaults) an `x-amz-checksum-*`
/// of its body; either must match.
fn check_body_integrity(req: &Req, body: &[u8]) -> Result<()> {
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
