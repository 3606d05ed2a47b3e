//! CopyObject and UploadPartCopy.
//!
//! Both name their source in `x-amz-copy-source`, honour the `x-amz-copy-source-if-*`
//! preconditions against it, and stream the source's bytes into a new object or part. A copy
//! of an object onto itself only rewrites its headers (no data is copied).

use std::ops::Range;

use super::multipart::{checksum_algorithm, write_checksum};
use super::put;
use crate::engine::{Digests, ObjectHeaders, ObjectInfo, PutOptions, Verify};
use crate::error::{Code, Error, Result};
use crate::s3::headers::{self, ConditionFields, quote_etag};
use crate::s3::route::{CopySource, PartParams};
use crate::s3::xml::{XmlWriter, iso8601};
use crate::s3::{Req, Response, S3, xml_response};

/// S3's largest CopyObject source (and UploadPartCopy range): larger objects are copied with
/// multipart UploadPartCopy.
const MAX_COPY_SIZE: u64 = 5 << 30;

pub async fn copy_object(s3: &S3, req: Req, source: CopySource) -> Result<Response> {
    put::check_write_headers(&req)?;
    let replacement = replacement_headers(&req)?;
    let requested_checksum = req
        .header("x-amz-checksum-algorithm")
        .map(checksum_algorithm)
        .transpose()?;
    let info = source_object(s3, &req, &source).await?;
    check_copy_size(info.size)?;

    let copied = if source.is(req.bucket(), req.key()) {
        let Some(headers) = replacement else {
            return Err(Error::msg(
                Code::InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
            ));
        };
        s3.engine
            .replace_headers(req.bucket(), req.key(), headers)
            .await?
    } else {
        let opts = PutOptions {
            headers: replacement.unwrap_or_else(|| info.headers.clone()),
            checksum: requested_checksum.or(info.checksum.as_ref().map(|c| c.algorithm)),
            condition: Default::default(),
        };
        let body = s3.engine.read_version(&source.bucket, &info, None).await?;
        s3.engine
            .put_object(req.bucket(), req.key(), opts, body, no_verify())
            .await?
    };

    let mut w = XmlWriter::new("CopyObjectResult");
    w.elem("LastModified", iso8601(copied.last_modified))
        .elem("ETag", quote_etag(&copied.etag));
    if let Some(c) = &copied.checksum {
        write_checksum(&mut w, c.algorithm, &c.value);
        w.elem("ChecksumType", c.kind.name());
    }
    Ok(xml_response(w.finish()))
}

pub async fn upload_part_copy(
    s3: &S3,
    req: Req,
    part: PartParams,
    source: CopySource,
) -> Result<Response> {
    let upload_id = &part.upload_id;
    let upload = s3.engine.upload(req.bucket(), req.key(), upload_id).await?;
    let info = source_object(s3, &req, &source).await?;
    let range = copy_range(req.header("x-amz-copy-source-range"), info.size)?;
    check_copy_size(range.as_ref().map_or(info.size, |r| r.end - r.start))?;

    let body = s3.engine.read_version(&source.bucket, &info, range).await?;
    let copied = s3
        .engine
        .upload_part(
            req.bucket(),
            req.key(),
            upload_id,
            part.part_number,
            body,
            no_verify(),
        )
        .await?;

    let mut w = XmlWriter::new("CopyPartResult");
    w.elem("LastModified", iso8601(copied.last_modified))
        .elem("ETag", quote_etag(&copied.etag));
    if let (Some((algorithm, _)), Some(value)) = (upload.checksum, &copied.checksum) {
        write_checksum(&mut w, algorithm, value);
    }
    Ok(xml_response(w.finish()))
}

/// The object named by `x-amz-copy-source`, once its copy preconditions hold.
async fn source_object(s3: &S3, req: &Req, source: &CopySource) -> Result<ObjectInfo> {
    let info = s3.engine.head_object(&source.bucket, &source.key).await?;
    headers::check_preconditions(&req.headers, &ConditionFields::COPY_SOURCE, &info)?;
    Ok(info)
}

/// `x-amz-metadata-directive`: COPY (the default) keeps the source's headers, REPLACE takes
/// them from this request (`Some`).
fn replacement_headers(req: &Req) -> Result<Option<ObjectHeaders>> {
    match req.header("x-amz-metadata-directive").map(str::trim) {
        None | Some("COPY") => Ok(None),
        Some("REPLACE") => headers::object_headers(&req.headers).map(Some),
        Some(_) => Err(Error::msg(
            Code::InvalidArgument,
            "Unknown metadata directive.",
        )),
    }
}

fn check_copy_size(size: u64) -> Result<()> {
    if size > MAX_COPY_SIZE {
        return Err(Error::msg(
            Code::InvalidRequest,
            format!(
                "The specified copy source is larger than the maximum allowable size for a copy source: {MAX_COPY_SIZE}"
            ),
        ));
    }
    Ok(())
}

/// The source was checked by its ETag preconditions; its bytes were verified when written.
fn no_verify() -> Verify {
    Box::new(|_: &Digests| Ok(()))
}

/// `x-amz-copy-source-range: bytes=first-last` (inclusive, both required, inside the source).
fn copy_range(value: Option<&str>, size: u64) -> Result<Option<Range<u64>>> {
    let Some(value) = value else { return Ok(None) };
    let bounds = value
        .trim()
        .strip_prefix("bytes=")
        .and_then(|spec| spec.split_once('-'))
        .and_then(|(first, last)| {
            Some((
                first.trim().parse::<u64>().ok()?,
                last.trim().parse::<u64>().ok()?,
            ))
        });
    let Some((first, last)) = bounds else {
        return Err(Error::msg(
            Code::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        ));
    };
    // A range past the source's end is unsatisfiable (416, as AWS); one that ends before it
    // starts is malformed.
    if first > last || last >= size {
        let code = if first > last {
            Code::InvalidArgument
        } else {
            Code::InvalidRange
        };
        return Err(Error::msg(
            code,
            format!("Range specified is not valid for source object of size: {size}"),
        ));
    }
    Ok(Some(first..last + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_ranges() {
        assert_eq!(copy_range(None, 10).unwrap(), None);
        assert_eq!(copy_range(Some("bytes=0-9"), 10).unwrap(), Some(0..10));
        assert_eq!(copy_range(Some("bytes=3-3"), 10).unwrap(), Some(3..4));
        for (out_of_source, code) in [
            ("bytes=0-10", Code::InvalidRange),
            ("bytes=10-10", Code::InvalidRange),
            ("bytes=5-4", Code::InvalidArgument),
        ] {
            let err = copy_range(Some(out_of_source), 10).unwrap_err();
            assert_eq!(err.code, code, "{out_of_source}");
            assert_eq!(
                err.message(),
                "Range specified is not valid for source object of size: 10"
            );
        }
        assert_eq!(
            copy_range(Some("bytes=0-0"), 0).unwrap_err().code,
            Code::InvalidRange
        );
        for garbled in ["bytes=5-", "bytes=-5", "0-5", "bytes=a-b", "bytes=0-1,3-4"] {
            let err = copy_range(Some(garbled), 10).unwrap_err();
            assert_eq!(err.code, Code::InvalidArgument, "{garbled}");
            assert!(
                err.message()
                    .starts_with("The x-amz-copy-source-range value"),
                "{garbled}"
            );
        }
    }

    #[test]
    fn copy_size_limit() {
        assert!(check_copy_size(MAX_COPY_SIZE).is_ok());
        assert_eq!(
            check_copy_size(MAX_COPY_SIZE + 1).unwrap_err().code,
            Code::InvalidRequest
        );
    }
}
