//! CopyObject and UploadPartCopy.
//!
//! Both name their source in `x-amz-copy-source`, honour the `x-amz-copy-source-if-*`
//! preconditions against it, and stream the source's bytes into a new object or part. A copy
//! of an object onto itself only rewrites its headers (no data is copied).

use std::ops::Range;

use percent_encoding::percent_decode_str;

use super::multipart::{checksum_algorithm, part_number, upload_id, write_checksum};
use super::put;
use crate::engine::{Digests, ObjectHeaders, ObjectInfo, PutOptions, Verify};
use crate::error::{Code, Error, Result};
use crate::s3::headers::{self, quote_etag};
use crate::s3::route::Query;
use crate::s3::xml::{XmlWriter, iso8601};
use crate::s3::{Req, Response, S3, xml_response};

/// S3's largest CopyObject source (and UploadPartCopy range): larger objects are copied with
/// multipart UploadPartCopy.
const MAX_COPY_SIZE: u64 = 5 << 30;

pub async fn copy_object(s3: &S3, req: Req) -> Result<Response> {
    put::check_write_headers(&req)?;
    let replacement = replacement_headers(&req)?;
    let requested_checksum = req
        .header("x-amz-checksum-algorithm")
        .map(checksum_algorithm)
        .transpose()?;
    let (source, info) = source_object(s3, &req).await?;
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

pub async fn upload_part_copy(s3: &S3, req: Req) -> Result<Response> {
    let part_number = part_number(&req)?;
    let upload_id = upload_id(&req)?;
    let upload = s3.engine.upload(req.bucket(), req.key(), upload_id).await?;
    let (source, info) = source_object(s3, &req).await?;
    let range = copy_range(req.header("x-amz-copy-source-range"), info.size)?;
    check_copy_size(range.as_ref().map_or(info.size, |r| r.end - r.start))?;

    let body = s3.engine.read_version(&source.bucket, &info, range).await?;
    let part = s3
        .engine
        .upload_part(
            req.bucket(),
            req.key(),
            upload_id,
            part_number,
            body,
            no_verify(),
        )
        .await?;

    let mut w = XmlWriter::new("CopyPartResult");
    w.elem("LastModified", iso8601(part.last_modified))
        .elem("ETag", quote_etag(&part.etag));
    if let (Some((algorithm, _)), Some(value)) = (upload.checksum, &part.checksum) {
        write_checksum(&mut w, algorithm, value);
    }
    Ok(xml_response(w.finish()))
}

/// The object named by `x-amz-copy-source`, once its copy preconditions hold.
async fn source_object(s3: &S3, req: &Req) -> Result<(CopySource, ObjectInfo)> {
    let source = parse_copy_source(req.header("x-amz-copy-source").unwrap_or(""))?;
    let info = s3.engine.head_object(&source.bucket, &source.key).await?;
    headers::check_preconditions(&req.headers, "x-amz-copy-source-", true, &info)?;
    Ok((source, info))
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

/// Where a copy reads from.
#[derive(Debug, PartialEq, Eq)]
struct CopySource {
    bucket: String,
    key: String,
}

impl CopySource {
    fn is(&self, bucket: &str, key: &str) -> bool {
        self.bucket == bucket && self.key == key
    }
}

/// Parses `x-amz-copy-source`: `bucket/key` or `/bucket/key`, percent-encoded, with an
/// optional `?versionId=` (only `null` exists in an unversioned bucket).
fn parse_copy_source(value: &str) -> Result<CopySource> {
    let malformed = || {
        Error::msg(
            Code::InvalidArgument,
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        )
    };
    // A `?` in a key arrives encoded (%3F), so the first literal one starts the query.
    let (path, query) = value
        .split_once('?')
        .map_or((value, None), |(p, q)| (p, Some(q)));
    match Query::parse(query).get("versionId") {
        None | Some("null") => {}
        Some(_) => {
            return Err(Error::msg(
                Code::InvalidArgument,
                "Invalid version id specified",
            ));
        }
    }
    let path = percent_decode_str(path.trim())
        .decode_utf8()
        .map_err(|_| malformed())?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    match path.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(CopySource {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        }),
        _ => Err(malformed()),
    }
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

    fn source(bucket: &str, key: &str) -> CopySource {
        CopySource {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    #[test]
    fn copy_source_forms() {
        assert_eq!(parse_copy_source("b/k").unwrap(), source("b", "k"));
        assert_eq!(parse_copy_source("/b/dir/k").unwrap(), source("b", "dir/k"));
        assert_eq!(
            parse_copy_source("b/a%20b%2Bc+d").unwrap(),
            source("b", "a b+c+d")
        );
        assert_eq!(
            parse_copy_source("b/caf%C3%A9/%3Fq").unwrap(),
            source("b", "café/?q")
        );
        assert_eq!(
            parse_copy_source("/b/k?versionId=null").unwrap(),
            source("b", "k")
        );
        assert_eq!(parse_copy_source("b/k/").unwrap(), source("b", "k/"));
    }

    #[test]
    fn copy_source_errors() {
        for bad in ["", "b", "/b", "b/", "/b/", "//k", "b/%FF"] {
            let err = parse_copy_source(bad).unwrap_err();
            assert_eq!(err.code, Code::InvalidArgument, "{bad}");
            assert!(
                err.message().starts_with("Copy Source must mention"),
                "{bad}"
            );
        }
        let err = parse_copy_source("b/k?versionId=3HL4kqtJlcpXroDTDmJ").unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
        assert_eq!(err.message(), "Invalid version id specified");
    }

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
