//! CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload, ListParts.
//!
//! The engine keeps uploads and parts and assembles the object as a manifest of part blobs;
//! this module reads the requests and writes the answers. UploadPartCopy lives in `copy.rs`
//! and shares [`write_checksum`].

use http::{HeaderValue, StatusCode};

use super::list::url_encode;
use super::put;
use crate::engine::{
    ChecksumAlgorithm, ChecksumType, CompletedPart, ListPartsQuery, PartInfo, UploadInfo,
};
use crate::error::{Code, Error, Result};
use crate::s3::headers::{self, quote_etag};
use crate::s3::route::{ListPartsParams, PartParams};
use crate::s3::xml::{self, CompleteMultipartUpload, CompletePart, XmlWriter, iso8601};
use crate::s3::{Req, Response, S3, empty_response, xml_response};

/// Largest CompleteMultipartUpload body we read; 10,000 parts with checksums fit in ~2 MiB.
const MAX_COMPLETE_BODY: usize = 4 << 20;

pub async fn create(s3: &S3, req: Req) -> Result<Response> {
    put::check_write_headers(&req)?;
    let object_headers = headers::object_headers(&req.headers)?;
    let checksum = upload_checksum(
        req.header("x-amz-checksum-algorithm"),
        req.header("x-amz-checksum-type"),
    )?;
    let upload = s3
        .engine
        .create_upload(req.bucket(), req.key(), object_headers, checksum)
        .await?;

    let mut w = XmlWriter::new("InitiateMultipartUploadResult");
    w.elem("Bucket", req.bucket())
        .elem("Key", req.key())
        .elem("UploadId", &upload.upload_id);
    let mut response = xml_response(w.finish());
    if let Some((algorithm, kind)) = upload.checksum {
        let h = response.headers_mut();
        h.insert(
            "x-amz-checksum-algorithm",
            HeaderValue::from_static(algorithm.name()),
        );
        h.insert("x-amz-checksum-type", HeaderValue::from_static(kind.name()));
    }
    Ok(response)
}

pub async fn upload_part(s3: &S3, mut req: Req, part: PartParams) -> Result<Response> {
    let PartParams {
        upload_id,
        part_number,
    } = part;
    put::check_declared_size(s3, &req)?;
    let integrity = headers::integrity(&req.headers)?;
    let upload = s3
        .engine
        .upload(req.bucket(), req.key(), &upload_id)
        .await?;
    let algorithm = part_algorithm(&upload, integrity.algorithm)?;
    let mut body = req.take_body();
    if algorithm.is_none() {
        // The engine computes only the upload's algorithm: check the part's own on the way.
        body = integrity.verify_stream(body, req.trailers.clone());
    }
    let verify = integrity.into_verify(req.trailers.clone());
    let part = s3
        .engine
        .upload_part(
            req.bucket(),
            req.key(),
            &upload_id,
            part_number,
            body,
            verify,
        )
        .await?;
    Ok(part_response(&part, algorithm))
}

pub async fn complete(s3: &S3, mut req: Req, upload_id: String) -> Result<Response> {
    let condition = headers::write_condition(&req.headers)?;
    let body = xml::read_small_body(req.take_body(), MAX_COMPLETE_BODY).await?;
    let document: CompleteMultipartUpload = xml::parse(&body)?;
    if document.parts.is_empty() {
        return Err(Error::new(Code::MalformedXML));
    }
    let parts = document.parts.iter().map(completed_part).collect();
    let declared = headers::integrity(&req.headers)?.expected;
    let info = s3
        .engine
        .complete_upload(
            req.bucket(),
            req.key(),
            &upload_id,
            parts,
            condition,
            declared,
        )
        .await?;

    let mut w = XmlWriter::new("CompleteMultipartUploadResult");
    w.elem("Location", location(s3, &req))
        .elem("Bucket", req.bucket())
        .elem("Key", req.key())
        .elem("ETag", quote_etag(&info.etag));
    if let Some(c) = &info.checksum {
        write_checksum(&mut w, c.algorithm, &c.value);
        w.elem("ChecksumType", c.kind.name());
    }
    Ok(xml_response(w.finish()))
}

pub async fn abort(s3: &S3, req: Req, upload_id: String) -> Result<Response> {
    s3.engine
        .abort_upload(req.bucket(), req.key(), &upload_id)
        .await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn list_parts(s3: &S3, req: Req, params: ListPartsParams) -> Result<Response> {
    let ListPartsParams {
        upload_id,
        part_number_marker: marker,
        max_parts,
    } = params;
    let query = ListPartsQuery {
        part_number_marker: marker,
        max_parts,
    };
    let (upload, parts, truncated) = s3
        .engine
        .list_parts(req.bucket(), req.key(), &upload_id, query)
        .await?;

    let page = PartsPage {
        bucket: req.bucket(),
        key: req.key(),
        upload_id: &upload.upload_id,
        marker,
        max_parts,
        truncated,
        owner: &s3.owner_id,
        checksum: upload.checksum,
    };
    Ok(list_parts_answer(&page, &parts))
}

/// What a ListParts answer says around its parts: the upload and the page.
pub struct PartsPage<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub upload_id: &'a str,
    pub marker: u32,
    pub max_parts: usize,
    pub truncated: bool,
    /// The Initiator and Owner (we have one owner).
    pub owner: &'a str,
    /// The upload's checksum algorithm and type, from CreateMultipartUpload.
    pub checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
}

/// The ListPartsResult document for one page of parts: the store's answer and the edge's (for
/// parts it still holds) are written here alike.
pub fn list_parts_answer(page: &PartsPage, parts: &[PartInfo]) -> Response {
    let algorithm = page.checksum.map(|(a, _)| a);
    let next_marker = parts.last().map_or(page.marker, |p| p.part_number);
    let mut w = XmlWriter::new("ListPartsResult");
    w.elem("Bucket", page.bucket)
        .elem("Key", page.key)
        .elem("UploadId", page.upload_id)
        .elem("PartNumberMarker", page.marker)
        .elem("NextPartNumberMarker", next_marker)
        .elem("MaxParts", page.max_parts)
        .elem("IsTruncated", page.truncated);
    for part in parts {
        write_part(&mut w, part, algorithm);
    }
    w.owner("Initiator", page.owner)
        .owner("Owner", page.owner)
        .elem("StorageClass", "STANDARD");
    if let Some((algorithm, kind)) = page.checksum {
        w.elem("ChecksumAlgorithm", algorithm.name())
            .elem("ChecksumType", kind.name());
    }
    xml_response(w.finish())
}

/// `<ChecksumCRC32>value</ChecksumCRC32>` and its siblings.
pub(crate) fn write_checksum(w: &mut XmlWriter, algorithm: ChecksumAlgorithm, value: &str) {
    w.elem(&format!("Checksum{}", algorithm.name()), value);
}

/// An algorithm name (`CRC32`, `crc64nvme`, ...) from `x-amz-checksum-algorithm`.
pub(crate) fn checksum_algorithm(name: &str) -> Result<ChecksumAlgorithm> {
    ChecksumAlgorithm::from_name(name.trim()).ok_or_else(|| {
        Error::msg(
            Code::InvalidRequest,
            "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]",
        )
    })
}

/// The checksum a new upload declares: `x-amz-checksum-algorithm` and `x-amz-checksum-type`.
/// SHA digests cannot be combined, so they are COMPOSITE only; CRC64NVME is FULL_OBJECT only.
fn upload_checksum(
    algorithm: Option<&str>,
    kind: Option<&str>,
) -> Result<Option<(ChecksumAlgorithm, ChecksumType)>> {
    let invalid = |msg: String| Error::msg(Code::InvalidRequest, msg);
    let Some(algorithm) = algorithm else {
        return match kind {
            None => Ok(None),
            Some(_) => Err(invalid(
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.".into(),
            )),
        };
    };
    let algorithm = checksum_algorithm(algorithm)?;
    let kind = match kind {
        None => algorithm.default_type(),
        Some(k) => ChecksumType::from_name(k.trim())
            .ok_or_else(|| invalid("Value for x-amz-checksum-type header is invalid.".into()))?,
    };
    let allowed = match kind {
        ChecksumType::FullObject => algorithm.is_crc(),
        ChecksumType::Composite => algorithm != ChecksumAlgorithm::Crc64Nvme,
    };
    if !allowed {
        return Err(invalid(format!(
            "The {} checksum type cannot be used with the {} checksum algorithm.",
            kind.name(),
            algorithm.name().to_ascii_lowercase(),
        )));
    }
    Ok(Some((algorithm, kind)))
}

/// The algorithm the engine computes for a part: the upload's. A part that carries a checksum
/// of another algorithm is refused, as S3 does.
fn part_algorithm(
    upload: &UploadInfo,
    sent: Option<ChecksumAlgorithm>,
) -> Result<Option<ChecksumAlgorithm>> {
    let declared = upload.checksum.map(|(a, _)| a);
    match (declared, sent) {
        (Some(declared), Some(sent)) if declared != sent => Err(Error::msg(
            Code::InvalidRequest,
            format!(
                "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                declared.name().to_ascii_lowercase(),
                sent.name().to_ascii_lowercase(),
            ),
        )),
        _ => Ok(declared),
    }
}

/// 200 with the part's ETag and, when computed, its `x-amz-checksum-<algo>` (clients list it
/// in CompleteMultipartUpload only if we echo it here).
fn part_response(part: &PartInfo, algorithm: Option<ChecksumAlgorithm>) -> Response {
    let mut response = put::etag_response(&part.etag, None);
    let value = part.checksum.as_deref().map(HeaderValue::from_str);
    if let (Some(algorithm), Some(Ok(value))) = (algorithm, value) {
        response.headers_mut().insert(algorithm.header(), value);
    }
    response
}

/// s3cmd sends unquoted ETags, SDKs quoted ones: the engine compares them bare.
fn completed_part(part: &CompletePart) -> CompletedPart {
    CompletedPart {
        part_number: part.part_number,
        etag: part.etag.trim().trim_matches('"').to_owned(),
        checksum: part.checksum(),
    }
}

fn location(s3: &S3, req: &Req) -> String {
    object_location(
        req.scheme,
        req.header("host"),
        s3.config.base_domain.as_deref(),
        req.bucket(),
        req.key(),
    )
}

/// An object's URL as the client addressed the server (its `Host`, in its addressing style):
/// Complete's `<Location>`. An edge builds it for its own clients too, never passing on the
/// address it reached the store at.
pub fn object_location(
    scheme: &str,
    host: Option<&str>,
    base_domain: Option<&str>,
    bucket: &str,
    key: &str,
) -> String {
    let host = host.unwrap_or("localhost");
    let key = url_encode(key);
    let virtual_hosted = base_domain.is_some() && host.starts_with(&format!("{bucket}."));
    if virtual_hosted {
        format!("{scheme}://{host}/{key}")
    } else {
        format!("{scheme}://{host}/{bucket}/{key}")
    }
}

fn write_part(w: &mut XmlWriter, part: &PartInfo, algorithm: Option<ChecksumAlgorithm>) {
    w.open("Part")
        .elem("PartNumber", part.part_number)
        .elem("LastModified", iso8601(part.last_modified))
        .elem("ETag", quote_etag(&part.etag))
        .elem("Size", part.size);
    if let (Some(algorithm), Some(value)) = (algorithm, &part.checksum) {
        write_checksum(w, algorithm, value);
    }
    w.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChecksumAlgorithm::*;
    use ChecksumType::*;

    #[test]
    fn upload_checksum_defaults_and_combinations() {
        assert_eq!(upload_checksum(None, None).unwrap(), None);
        assert_eq!(
            upload_checksum(Some("crc32"), None).unwrap(),
            Some((Crc32, Composite))
        );
        assert_eq!(
            upload_checksum(Some("CRC64NVME"), None).unwrap(),
            Some((Crc64Nvme, FullObject))
        );
        assert_eq!(
            upload_checksum(Some("CRC32C"), Some("FULL_OBJECT")).unwrap(),
            Some((Crc32c, FullObject))
        );
        assert_eq!(
            upload_checksum(Some("SHA256"), Some("COMPOSITE")).unwrap(),
            Some((Sha256, Composite))
        );
        let refused = [
            (Some("MD5"), None),
            (Some("SHA1"), Some("FULL_OBJECT")),
            (Some("SHA256"), Some("FULL_OBJECT")),
            (Some("CRC64NVME"), Some("COMPOSITE")),
            (Some("CRC32"), Some("PARTIAL")),
            (None, Some("COMPOSITE")),
        ];
        for (algorithm, kind) in refused {
            let err = upload_checksum(algorithm, kind).unwrap_err();
            assert_eq!(err.code, Code::InvalidRequest, "{algorithm:?} {kind:?}");
        }
    }

    #[test]
    fn part_algorithm_must_match_the_upload() {
        let mut upload = UploadInfo {
            bucket: "b".into(),
            key: "k".into(),
            upload_id: "u".into(),
            initiated: std::time::UNIX_EPOCH,
            headers: Default::default(),
            checksum: Some((Crc32, Composite)),
        };
        assert_eq!(part_algorithm(&upload, Some(Crc32)).unwrap(), Some(Crc32));
        assert_eq!(part_algorithm(&upload, None).unwrap(), Some(Crc32));
        assert_eq!(
            part_algorithm(&upload, Some(Sha1)).unwrap_err().code,
            Code::InvalidRequest
        );
        upload.checksum = None;
        assert_eq!(part_algorithm(&upload, Some(Sha1)).unwrap(), None);
    }

    #[test]
    fn completed_parts_lose_their_quotes() {
        let body = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"abc\"</ETag>\
            <ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part><Part><PartNumber>2</PartNumber><ETag>def</ETag></Part>\
            </CompleteMultipartUpload>";
        let doc: CompleteMultipartUpload = xml::parse(body).unwrap();
        let parts: Vec<_> = doc.parts.iter().map(completed_part).collect();
        assert_eq!(
            parts[0],
            CompletedPart {
                part_number: 1,
                etag: "abc".into(),
                checksum: Some("AAAAAA==".into())
            }
        );
        assert_eq!(
            parts[1],
            CompletedPart {
                part_number: 2,
                etag: "def".into(),
                checksum: None
            }
        );
    }

    #[test]
    fn checksum_element_names() {
        let mut w = XmlWriter::new("R");
        write_checksum(&mut w, Crc64Nvme, "AAAAAAAAAAA=");
        assert!(
            w.finish()
                .contains("<ChecksumCRC64NVME>AAAAAAAAAAA=</ChecksumCRC64NVME>")
        );
    }
}
