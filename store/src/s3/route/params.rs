//! Query parameters, decoded once and parsed into the typed values the [`Endpoint`] variants
//! carry. Invalid values are refused here with the error AWS gives, so no handler re-reads the
//! query.
//!
//! [`Endpoint`]: super::Endpoint

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderName, HeaderValue, header};
use percent_encoding::percent_decode_str;

use crate::error::{Code, Error, Result};

/// S3's largest page, and the page size when the client does not ask for one.
pub const MAX_PAGE: usize = 1000;
/// Part numbers S3 accepts (UploadPart, UploadPartCopy, `?partNumber=` reads).
pub const PART_NUMBERS: std::ops::RangeInclusive<u32> = 1..=10_000;
/// The most buckets ListBuckets returns in one page (and `max-buckets`' upper bound).
pub const MAX_BUCKETS: usize = 10_000;
/// Unversioned buckets have one version per key, whose id is `null`.
pub const NULL_VERSION: &str = "null";

/// Decoded query parameters in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Query(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A value that means "not given" when empty (markers, delimiters, prefixes).
    fn non_empty(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    /// A non-negative integer; `default` when absent, InvalidArgument when it is not a number.
    fn int(&self, name: &str, default: usize) -> Result<usize> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|_| {
                Error::msg(
                    Code::InvalidArgument,
                    format!("Provided {name} not an integer or within integer range"),
                )
            }),
        }
    }

    /// `max-keys`, `max-uploads`, `max-parts`: 1000 by default, and never more.
    fn max(&self, name: &str) -> Result<usize> {
        Ok(self.int(name, MAX_PAGE)?.min(MAX_PAGE))
    }
}

/// `encoding-type`: S3 knows only `url`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Encoding {
    pub url: bool,
}

impl Encoding {
    fn parse(query: &Query) -> Result<Self> {
        match query.get("encoding-type") {
            None => Ok(Encoding { url: false }),
            Some("url") => Ok(Encoding { url: true }),
            Some(_) => Err(Error::msg(
                Code::InvalidArgument,
                "Invalid Encoding Method specified in Request",
            )),
        }
    }
}

/// The parameters every listing shares. `max` is `max-keys` (or `max-uploads`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    /// Empty when not given.
    pub prefix: String,
    pub delimiter: Option<String>,
    pub max: usize,
    pub encoding: Encoding,
}

impl ListParams {
    fn parse(query: &Query, max_name: &str) -> Result<Self> {
        Ok(ListParams {
            prefix: query.get("prefix").unwrap_or("").to_owned(),
            delimiter: query.non_empty("delimiter"),
            max: query.max(max_name)?,
            encoding: Encoding::parse(query)?,
        })
    }
}

/// ListBuckets' pagination (the 2024 API). Without `max-buckets` every bucket is one page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListBucketsParams {
    pub prefix: Option<String>,
    pub max_buckets: usize,
    /// The bucket name to resume after, from `continuation-token`.
    pub resume_after: Option<String>,
    /// Only buckets in this region (we have one).
    pub bucket_region: Option<String>,
}

impl ListBucketsParams {
    pub(super) fn parse(q: &Query) -> Result<Self> {
        let max_buckets = match q.get("max-buckets") {
            None => MAX_BUCKETS,
            Some(raw) => raw
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=MAX_BUCKETS).contains(n))
                .ok_or_else(|| {
                    Error::msg(
                        Code::InvalidArgument,
                        "Argument max-buckets must be an integer between 1 and 10000",
                    )
                })?,
        };
        Ok(ListBucketsParams {
            prefix: q.non_empty("prefix"),
            max_buckets,
            resume_after: q
                .non_empty("continuation-token")
                .map(|t| decode_token(&t))
                .transpose()?,
            bucket_region: q.non_empty("bucket-region"),
        })
    }
}

/// ListObjects (v1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListObjectsParams {
    pub list: ListParams,
    pub marker: Option<String>,
}

impl ListObjectsParams {
    pub(super) fn parse(q: &Query) -> Result<Self> {
        Ok(ListObjectsParams {
            list: ListParams::parse(q, "max-keys")?,
            marker: q.non_empty("marker"),
        })
    }
}

/// ListObjectsV2.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListObjectsV2Params {
    pub list: ListParams,
    /// As the client sent it (echoed, even empty, as AWS does).
    pub continuation_token: Option<String>,
    pub start_after: Option<String>,
    /// Where the listing resumes: the token's key, which already honoured start-after, or
    /// start-after itself.
    pub resume_after: Option<String>,
    pub fetch_owner: bool,
}

impl ListObjectsV2Params {
    pub(super) fn parse(q: &Query) -> Result<Self> {
        let start_after = q.non_empty("start-after");
        // An empty token is absent, as at AWS.
        let resume_after = match q.non_empty("continuation-token") {
            Some(token) => Some(decode_token(&token)?),
            None => start_after.clone(),
        };
        Ok(ListObjectsV2Params {
            list: ListParams::parse(q, "max-keys")?,
            continuation_token: q.get("continuation-token").map(str::to_owned),
            start_after,
            resume_after,
            fetch_owner: q
                .get("fetch-owner")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }
}

/// ListObjectVersions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListVersionsParams {
    pub list: ListParams,
    pub key_marker: Option<String>,
    pub version_id_marker: Option<String>,
}

impl ListVersionsParams {
    pub(super) fn parse(q: &Query) -> Result<Self> {
        let key_marker = q.non_empty("key-marker");
        let version_id_marker = q.non_empty("version-id-marker");
        if version_id_marker.is_some() && key_marker.is_none() {
            return Err(Error::msg(
                Code::InvalidArgument,
                "A version-id marker cannot be specified without a key marker.",
            ));
        }
        Ok(ListVersionsParams {
            list: ListParams::parse(q, "max-keys")?,
            key_marker,
            version_id_marker,
        })
    }
}

/// ListMultipartUploads (`list.max` is `max-uploads`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListUploadsParams {
    pub list: ListParams,
    pub key_marker: Option<String>,
    /// Only with a key marker: S3 ignores it otherwise.
    pub upload_id_marker: Option<String>,
}

impl ListUploadsParams {
    pub(super) fn parse(q: &Query) -> Result<Self> {
        let key_marker = q.non_empty("key-marker");
        Ok(ListUploadsParams {
            list: ListParams::parse(q, "max-uploads")?,
            upload_id_marker: key_marker.as_ref().and(q.non_empty("upload-id-marker")),
            key_marker,
        })
    }
}

/// ListParts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPartsParams {
    pub upload_id: String,
    pub part_number_marker: u32,
    pub max_parts: usize,
}

impl ListPartsParams {
    pub(super) fn parse(q: &Query) -> Result<Self> {
        let marker = q.int("part-number-marker", 0)?;
        Ok(ListPartsParams {
            upload_id: upload_id(q)?,
            // Part numbers stop at 10,000: a larger marker lists nothing, as any marker past
            // the end.
            part_number_marker: u32::try_from(marker).unwrap_or(u32::MAX),
            max_parts: q.max("max-parts")?,
        })
    }
}

/// One part of one upload: UploadPart and UploadPartCopy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartParams {
    pub upload_id: String,
    pub part_number: u32,
}

impl PartParams {
    pub(super) fn parse(q: &Query) -> Result<Self> {
        Ok(PartParams {
            upload_id: upload_id(q)?,
            part_number: part_number(q.get("partNumber"))?.ok_or_else(invalid_part_number)?,
        })
    }
}

/// GetObject and HeadObject.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadParams {
    /// Only `null` exists in an unversioned bucket; other ids are refused in routing.
    pub version_id: Option<String>,
    /// `?partNumber=N`: the byte range of part N.
    pub part_number: Option<u32>,
    /// `response-*` parameters: headers the answer carries instead of the stored ones.
    pub overrides: Vec<(HeaderName, HeaderValue)>,
}

/// `response-*` query parameters and the header each overrides.
const OVERRIDES: &[(&str, HeaderName)] = &[
    ("response-content-type", header::CONTENT_TYPE),
    ("response-content-language", header::CONTENT_LANGUAGE),
    ("response-expires", header::EXPIRES),
    ("response-cache-control", header::CACHE_CONTROL),
    ("response-content-disposition", header::CONTENT_DISPOSITION),
    ("response-content-encoding", header::CONTENT_ENCODING),
];

impl ReadParams {
    pub(super) fn parse(q: &Query) -> Result<Self> {
        let overrides = OVERRIDES
            .iter()
            .filter_map(|(param, name)| {
                let value = HeaderValue::from_str(q.get(param)?).ok()?;
                Some((name.clone(), value))
            })
            .collect();
        Ok(ReadParams {
            version_id: version_id(q.get("versionId"))?,
            part_number: part_number(q.get("partNumber"))?,
            overrides,
        })
    }
}

/// `versionId`: only `null` exists in an unversioned bucket.
pub(super) fn version_id(value: Option<&str>) -> Result<Option<String>> {
    match value {
        None => Ok(None),
        Some(NULL_VERSION) => Ok(Some(NULL_VERSION.to_owned())),
        Some(_) => Err(Error::msg(
            Code::InvalidArgument,
            "Invalid version id specified",
        )),
    }
}

fn part_number(value: Option<&str>) -> Result<Option<u32>> {
    value
        .map(|raw| {
            raw.parse()
                .ok()
                .filter(|n| PART_NUMBERS.contains(n))
                .ok_or_else(invalid_part_number)
        })
        .transpose()
}

fn invalid_part_number() -> Error {
    Error::msg(
        Code::InvalidArgument,
        "Part number must be an integer between 1 and 10000, inclusive",
    )
}

/// `uploadId` of the requests on one upload; an empty id names no upload.
pub(super) fn upload_id(q: &Query) -> Result<String> {
    q.non_empty("uploadId")
        .ok_or_else(|| Error::new(Code::NoSuchUpload))
}

/// The opaque continuation token of listings: the key (or bucket, or common prefix) to resume
/// after.
pub fn encode_token(resume_after: &str) -> String {
    URL_SAFE_NO_PAD.encode(resume_after)
}

fn decode_token(token: &str) -> Result<String> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .filter(|key| !key.is_empty())
        .ok_or_else(|| {
            Error::msg(
                Code::InvalidArgument,
                "The continuation token provided is incorrect",
            )
        })
}

/// Where a copy reads from (`x-amz-copy-source` of CopyObject and UploadPartCopy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    pub bucket: String,
    pub key: String,
}

impl CopySource {
    pub fn is(&self, bucket: &str, key: &str) -> bool {
        self.bucket == bucket && self.key == key
    }

    /// `bucket/key` or `/bucket/key`, percent-encoded, with an optional `?versionId=` (only
    /// `null` exists in an unversioned bucket).
    pub(super) fn parse(value: &str) -> Result<CopySource> {
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
        version_id(Query::parse(query).get("versionId"))?;
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
}
