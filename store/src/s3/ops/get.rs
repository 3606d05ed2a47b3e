//! GetObject, HeadObject and GetObjectAttributes.

use std::ops::Range;

use axum::body::Body;
use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};

use crate::engine::{ObjectInfo, StoredChecksum};
use crate::error::{Code, Error, Result};
use crate::s3::headers::{self, ConditionFields, Precondition, Validators, write_object_headers};
use crate::s3::route::ReadParams;
use crate::s3::xml::XmlWriter;
use crate::s3::{Req, Response, S3, authorize, xml_response};

/// What a read answers with: GetObject's body, or HeadObject's headers alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Body,
    Head,
}

/// GetObject and HeadObject.
pub async fn get_object(s3: &S3, req: Req, params: ReadParams, answer: Answer) -> Result<Response> {
    let info = match s3.engine.head_object(req.bucket(), req.key()).await {
        Ok(info) => info,
        Err(e) => {
            return Err(authorize::hide_missing(s3, &req.facts, req.bucket(), e.into()).await);
        }
    };
    match headers::evaluate(&req.headers, &ConditionFields::READ, Validators::of(&info)) {
        Precondition::Proceed => {}
        Precondition::NotModified => {
            let mut full = HeaderMap::new();
            write_object_headers(&mut full, &info);
            return Ok(headers::not_modified(&full));
        }
        Precondition::Failed => return Err(Error::new(Code::PreconditionFailed)),
    }
    let part = part_range(&req, params.part_number, &info)?;
    let range = match &part {
        Some((_, range)) => Some(range.clone()),
        None => headers::parse_range(req.header("range"), info.size)?,
    };

    let mut h = HeaderMap::new();
    write_object_headers(&mut h, &info);
    let status = match &range {
        // A partNumber read of a single-part object is the whole object: 200, as S3.
        Some(r) if part.is_none() || !info.parts.is_empty() => {
            let content_range = format!(
                "bytes {}-{}/{}",
                r.start,
                r.end.saturating_sub(1),
                info.size
            );
            h.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&content_range).expect("ascii"),
            );
            StatusCode::PARTIAL_CONTENT
        }
        _ => StatusCode::OK,
    };
    if let Some((number, _)) = &part {
        if !info.parts.is_empty() {
            h.insert("x-amz-mp-parts-count", HeaderValue::from(info.parts.len()));
        }
        if req
            .header("x-amz-checksum-mode")
            .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"))
        {
            write_part_checksum(&mut h, &info, *number);
        }
    } else if range.is_none() && checksum_mode(&req) {
        // A full-object checksum would not match a ranged body (DESIGN.md lessons).
        if let Some(c) = &info.checksum {
            headers::write_checksum_headers(&mut h, c);
        }
    }
    for (name, value) in params.overrides {
        h.insert(name, value);
    }
    let length = range.as_ref().map_or(info.size, |r| r.end - r.start);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));

    let body = if answer == Answer::Head {
        Body::empty()
    } else {
        Body::from_stream(s3.engine.read_version(req.bucket(), &info, range).await?)
    };
    let mut response = http::Response::builder()
        .status(status)
        .body(body)
        .expect("valid response");
    *response.headers_mut() = h;
    Ok(response)
}

fn checksum_mode(req: &Req) -> bool {
    req.header("x-amz-checksum-mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"))
}

/// `?partNumber=N`: the byte range of part N (a single-part object has just part 1).
/// A part the object does not have is InvalidPart (400), as AWS answers.
fn part_range(
    req: &Req,
    number: Option<u32>,
    info: &ObjectInfo,
) -> Result<Option<(u32, Range<u64>)>> {
    let Some(number) = number else {
        return Ok(None);
    };
    if req.header("range").is_some() {
        return Err(Error::msg(
            Code::InvalidRequest,
            "Cannot specify both Range header and partNumber query parameter",
        ));
    }
    if info.parts.is_empty() {
        return if number == 1 {
            Ok(Some((1, 0..info.size)))
        } else {
            Err(Error::new(Code::InvalidPart))
        };
    }
    let index = number as usize - 1;
    let part = info
        .parts
        .get(index)
        .ok_or_else(|| Error::new(Code::InvalidPart))?;
    let start: u64 = info.parts[..index].iter().map(|p| p.size).sum();
    Ok(Some((number, start..start + part.size)))
}

fn write_part_checksum(h: &mut HeaderMap, info: &ObjectInfo, number: u32) {
    let Some(stored) = &info.checksum else { return };
    let value = if info.parts.is_empty() {
        Some(stored.value.clone())
    } else {
        info.parts
            .get(number as usize - 1)
            .and_then(|p| p.checksum.clone())
    };
    if let Some(value) = value {
        let part = StoredChecksum {
            value,
            ..stored.clone()
        };
        headers::write_checksum_headers(h, &part);
    }
}

/// GetObjectAttributes: the attributes named in `x-amz-object-attributes`.
pub async fn get_object_attributes(s3: &S3, req: Req) -> Result<Response> {
    let info = s3.engine.head_object(req.bucket(), req.key()).await?;
    headers::check_preconditions(&req.headers, &ConditionFields::READ, &info)?;
    let wanted: Vec<String> = req
        .headers
        .get_all("x-amz-object-attributes")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_owned())
        .collect();
    if wanted.is_empty() {
        return Err(Error::msg(
            Code::InvalidArgument,
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
        ));
    }
    let wants = |name: &str| wanted.iter().any(|w| w == name);
    let mut w = XmlWriter::new("GetObjectAttributesResponse");
    if wants("ETag") {
        w.elem("ETag", &info.etag);
    }
    if wants("Checksum")
        && let Some(c) = &info.checksum
    {
        w.open("Checksum")
            .elem(&format!("Checksum{}", c.algorithm.name()), &c.value)
            .elem("ChecksumType", c.kind.name())
            .close();
    }
    if wants("ObjectParts") && !info.parts.is_empty() {
        write_object_parts(&mut w, &req, &info)?;
    }
    if wants("StorageClass") {
        w.elem("StorageClass", "STANDARD");
    }
    if wants("ObjectSize") {
        w.elem("ObjectSize", info.size);
    }
    let mut response = xml_response(w.finish());
    let lm = httpdate::fmt_http_date(info.last_modified);
    response.headers_mut().insert(
        header::LAST_MODIFIED,
        HeaderValue::from_str(&lm).expect("ascii"),
    );
    Ok(response)
}

fn write_object_parts(w: &mut XmlWriter, req: &Req, info: &ObjectInfo) -> Result<()> {
    let int = |name: &str, default: usize| -> Result<usize> {
        req.header(name).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| Error::msg(Code::InvalidArgument, format!("Invalid {name}")))
        })
    };
    let marker = int("x-amz-part-number-marker", 0)?;
    let max = int("x-amz-max-parts", 1000)?.min(1000);
    let listed: Vec<_> = info
        .parts
        .iter()
        .enumerate()
        .skip(marker)
        .take(max)
        .collect();
    let truncated = marker + listed.len() < info.parts.len();
    w.open("ObjectParts")
        .elem("PartsCount", info.parts.len())
        .elem("PartNumberMarker", marker)
        .elem("NextPartNumberMarker", marker + listed.len())
        .elem("MaxParts", max)
        .elem("IsTruncated", truncated);
    let algorithm = info.checksum.as_ref().map(|c| c.algorithm);
    for (i, part) in listed {
        w.open("Part")
            .elem("PartNumber", i + 1)
            .elem("Size", part.size);
        if let (Some(a), Some(c)) = (algorithm, &part.checksum) {
            w.elem(&format!("Checksum{}", a.name()), c);
        }
        w.close();
    }
    w.close();
    Ok(())
}
