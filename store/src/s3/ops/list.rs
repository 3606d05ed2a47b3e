//! ListObjects (v1), ListObjectsV2, ListObjectVersions, ListMultipartUploads.
//!
//! Each reads one page from the engine (which answers NoSuchBucket for a missing bucket) and
//! writes it as XML. With `encoding-type=url`, every element carrying a key, a prefix, a
//! delimiter or a marker is percent-encoded, as S3 does for keys that XML 1.0 cannot carry.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::engine::{ListPage, ListQuery, ListUploadsQuery, ObjectInfo, UploadInfo};
use crate::error::{Code, Error, Result};
use crate::s3::headers::quote_etag;
use crate::s3::route::Query;
use crate::s3::xml::{XmlWriter, iso8601};
use crate::s3::{Req, Response, S3, xml_response};

/// S3's largest page, and the page size when the client does not ask for one.
const MAX_PAGE: usize = 1000;
/// Unversioned buckets have one version per key, whose id is `null`.
const NULL_VERSION: &str = "null";

pub async fn list_objects_v2(s3: &S3, req: Req) -> Result<Response> {
    let params = ListParams::parse(&req.query)?;
    let token = req.query.get("continuation-token");
    let start_after = non_empty(req.query.get("start-after"));
    // The token resumes a listing that already honoured start-after, so it wins. An empty one
    // is absent, as at AWS (which still echoes it).
    let resume = match token.filter(|t| !t.is_empty()) {
        Some(t) => Some(decode_token(t)?),
        None => start_after.map(str::to_owned),
    };
    let fetch_owner = req
        .query
        .get("fetch-owner")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let page = list_page(s3, req.bucket(), &params, resume).await?;

    let enc = params.encoding;
    let mut w = XmlWriter::new("ListBucketResult");
    w.elem("Name", req.bucket())
        .elem("Prefix", enc.apply(&params.prefix));
    w.opt(
        "Delimiter",
        params.delimiter.as_deref().map(|d| enc.apply(d)),
    );
    w.elem("MaxKeys", params.max_keys);
    enc.write_type(&mut w);
    w.elem("KeyCount", page.objects.len() + page.common_prefixes.len())
        .elem("IsTruncated", page.is_truncated)
        .opt("ContinuationToken", token);
    w.opt(
        "NextContinuationToken",
        next_marker(&page).map(|m| encode_token(&m)),
    );
    w.opt("StartAfter", start_after.map(|s| enc.apply(s)));
    let owner = fetch_owner.then_some(s3.owner_id.as_str());
    write_page(&mut w, &page, Row::Contents, enc, owner);
    Ok(xml_response(w.finish()))
}

pub async fn list_objects_v1(s3: &S3, req: Req) -> Result<Response> {
    let params = ListParams::parse(&req.query)?;
    let marker = non_empty(req.query.get("marker"));
    let page = list_page(s3, req.bucket(), &params, marker.map(str::to_owned)).await?;

    let enc = params.encoding;
    let mut w = XmlWriter::new("ListBucketResult");
    w.elem("Name", req.bucket())
        .elem("Prefix", enc.apply(&params.prefix))
        .elem("Marker", enc.apply(marker.unwrap_or("")));
    w.opt(
        "NextMarker",
        next_marker(&page).map(|m| enc.apply(&m).into_owned()),
    );
    w.elem("MaxKeys", params.max_keys);
    w.opt(
        "Delimiter",
        params.delimiter.as_deref().map(|d| enc.apply(d)),
    );
    enc.write_type(&mut w);
    w.elem("IsTruncated", page.is_truncated);
    write_page(&mut w, &page, Row::Contents, enc, Some(&s3.owner_id));
    Ok(xml_response(w.finish()))
}

/// Unversioned buckets: every object is its own latest (and only) version, `null`.
pub async fn list_object_versions(s3: &S3, req: Req) -> Result<Response> {
    let params = ListParams::parse(&req.query)?;
    let key_marker = non_empty(req.query.get("key-marker"));
    let version_marker = non_empty(req.query.get("version-id-marker"));
    if version_marker.is_some() && key_marker.is_none() {
        return Err(Error::msg(
            Code::InvalidArgument,
            "A version-id marker cannot be specified without a key marker.",
        ));
    }
    // Each key has only the `null` version, so resuming "after (key, any version)" is
    // resuming after the key.
    let page = list_page(s3, req.bucket(), &params, key_marker.map(str::to_owned)).await?;

    let enc = params.encoding;
    let mut w = XmlWriter::new("ListVersionsResult");
    w.elem("Name", req.bucket())
        .elem("Prefix", enc.apply(&params.prefix))
        .elem("KeyMarker", enc.apply(key_marker.unwrap_or("")))
        .elem("VersionIdMarker", version_marker.unwrap_or(""));
    if let Some(next) = next_marker(&page) {
        w.elem("NextKeyMarker", enc.apply(&next))
            .elem("NextVersionIdMarker", NULL_VERSION);
    }
    w.elem("MaxKeys", params.max_keys);
    w.opt(
        "Delimiter",
        params.delimiter.as_deref().map(|d| enc.apply(d)),
    );
    enc.write_type(&mut w);
    w.elem("IsTruncated", page.is_truncated);
    write_page(&mut w, &page, Row::Version, enc, Some(&s3.owner_id));
    Ok(xml_response(w.finish()))
}

pub async fn list_multipart_uploads(s3: &S3, req: Req) -> Result<Response> {
    let q = &req.query;
    let enc = Encoding::parse(q)?;
    let prefix = non_empty(q.get("prefix"));
    let key_marker = non_empty(q.get("key-marker"));
    // S3 ignores upload-id-marker unless key-marker is given too.
    let upload_id_marker = key_marker.and(non_empty(q.get("upload-id-marker")));
    let max_uploads = max_param(q, "max-uploads")?;
    let delimiter = non_empty(q.get("delimiter"));
    let query = ListUploadsQuery {
        prefix: prefix.unwrap_or("").to_owned(),
        key_marker: key_marker.map(str::to_owned),
        upload_id_marker: upload_id_marker.map(str::to_owned),
        max_uploads,
    };
    let (uploads, common_prefixes, truncated) = if max_uploads == 0 {
        s3.engine.bucket(req.bucket()).await?;
        (Vec::new(), Vec::new(), false)
    } else {
        group_uploads(s3, req.bucket(), query, delimiter).await?
    };

    let last = uploads.last();
    let mut w = XmlWriter::new("ListMultipartUploadsResult");
    w.elem("Bucket", req.bucket())
        .elem("KeyMarker", enc.apply(key_marker.unwrap_or("")))
        .elem("UploadIdMarker", upload_id_marker.unwrap_or(""))
        .elem(
            "NextKeyMarker",
            enc.apply(last.map_or("", |u| u.key.as_str())),
        )
        .opt("Prefix", prefix.map(|p| enc.apply(p)))
        .elem(
            "NextUploadIdMarker",
            last.map_or("", |u| u.upload_id.as_str()),
        )
        .elem("MaxUploads", max_uploads);
    enc.write_type(&mut w);
    w.elem("IsTruncated", truncated);
    w.opt("Delimiter", delimiter.map(|d| enc.apply(d)));
    for upload in &uploads {
        write_upload(&mut w, upload, enc, &s3.owner_id);
    }
    write_prefixes(&mut w, &common_prefixes, enc);
    Ok(xml_response(w.finish()))
}

/// Uploads in key order, those whose key continues past the prefix with `delimiter` rolled up
/// into common prefixes; both count toward `max_uploads`. Uploads are few, so this walks the
/// engine's pages rather than seeking past each prefix.
async fn group_uploads(
    s3: &S3,
    bucket: &str,
    mut query: ListUploadsQuery,
    delimiter: Option<&str>,
) -> Result<(Vec<UploadInfo>, Vec<String>, bool)> {
    let max = query.max_uploads;
    let prefix_len = query.prefix.len();
    let (mut uploads, mut prefixes) = (Vec::new(), Vec::<String>::new());
    query.max_uploads = 1000;
    loop {
        let (page, more) = s3.engine.list_uploads(bucket, query.clone()).await?;
        for upload in page {
            let rolled = delimiter.and_then(|d| {
                let rest = &upload.key[prefix_len..];
                rest.find(d)
                    .map(|i| upload.key[..prefix_len + i + d.len()].to_owned())
            });
            if rolled.is_some() && rolled.as_ref() == prefixes.last() {
                continue;
            }
            if uploads.len() + prefixes.len() == max {
                return Ok((uploads, prefixes, true));
            }
            query.key_marker = Some(upload.key.clone());
            query.upload_id_marker = Some(upload.upload_id.clone());
            match rolled {
                Some(p) => prefixes.push(p),
                None => uploads.push(upload),
            }
        }
        if !more {
            return Ok((uploads, prefixes, false));
        }
    }
}

/// The parameters the three object listings share.
struct ListParams {
    prefix: String,
    delimiter: Option<String>,
    max_keys: usize,
    encoding: Encoding,
}

impl ListParams {
    fn parse(query: &Query) -> Result<Self> {
        Ok(ListParams {
            prefix: query.get("prefix").unwrap_or("").to_owned(),
            delimiter: non_empty(query.get("delimiter")).map(str::to_owned),
            max_keys: max_param(query, "max-keys")?,
            encoding: Encoding::parse(query)?,
        })
    }
}

/// One page of objects after `start_after` (exclusive).
async fn list_page(
    s3: &S3,
    bucket: &str,
    params: &ListParams,
    start_after: Option<String>,
) -> Result<ListPage> {
    if params.max_keys == 0 {
        // Nothing to list, but a missing bucket is still NoSuchBucket.
        s3.engine.bucket(bucket).await?;
        return Ok(ListPage::default());
    }
    let query = ListQuery {
        prefix: params.prefix.clone(),
        delimiter: params.delimiter.clone(),
        start_after,
        max_keys: params.max_keys,
    };
    Ok(s3.engine.list_objects(bucket, query).await?)
}

/// Where the next page starts, if there is one: the last key or common prefix returned.
fn next_marker(page: &ListPage) -> Option<String> {
    if !page.is_truncated {
        return None;
    }
    let last_key = page.objects.last().map(|o| o.key.as_str());
    let last_prefix = page.common_prefixes.last().map(String::as_str);
    page.next_marker
        .clone()
        .or_else(|| last_key.max(last_prefix).map(str::to_owned))
}

/// How an object appears in a listing.
#[derive(Clone, Copy)]
enum Row {
    /// `<Contents>` of ListObjects (v1, v2).
    Contents,
    /// `<Version>` of ListObjectVersions.
    Version,
}

fn write_page(w: &mut XmlWriter, page: &ListPage, row: Row, enc: Encoding, owner: Option<&str>) {
    for object in &page.objects {
        write_object(w, object, row, enc, owner);
    }
    write_prefixes(w, &page.common_prefixes, enc);
}

fn write_prefixes(w: &mut XmlWriter, prefixes: &[String], enc: Encoding) {
    for prefix in prefixes {
        w.open("CommonPrefixes")
            .elem("Prefix", enc.apply(prefix))
            .close();
    }
}

fn write_object(
    w: &mut XmlWriter,
    object: &ObjectInfo,
    row: Row,
    enc: Encoding,
    owner: Option<&str>,
) {
    match row {
        Row::Contents => w.open("Contents").elem("Key", enc.apply(&object.key)),
        Row::Version => w
            .open("Version")
            .elem("Key", enc.apply(&object.key))
            .elem("VersionId", NULL_VERSION)
            .elem("IsLatest", true),
    };
    w.elem("LastModified", iso8601(object.last_modified))
        .elem("ETag", quote_etag(&object.etag));
    if let Some(c) = &object.checksum {
        w.elem("ChecksumAlgorithm", c.algorithm.name())
            .elem("ChecksumType", c.kind.name());
    }
    w.elem("Size", object.size).elem("StorageClass", "STANDARD");
    if let Some(id) = owner {
        w.owner("Owner", id);
    }
    w.close();
}

fn write_upload(w: &mut XmlWriter, upload: &UploadInfo, enc: Encoding, owner_id: &str) {
    w.open("Upload")
        .elem("Key", enc.apply(&upload.key))
        .elem("UploadId", &upload.upload_id)
        .owner("Initiator", owner_id)
        .owner("Owner", owner_id)
        .elem("StorageClass", "STANDARD")
        .elem("Initiated", iso8601(upload.initiated));
    if let Some((algorithm, kind)) = upload.checksum {
        w.elem("ChecksumAlgorithm", algorithm.name())
            .elem("ChecksumType", kind.name());
    }
    w.close();
}

/// `encoding-type`: S3 knows only `url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Encoding {
    url: bool,
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

    fn apply(self, value: &str) -> Cow<'_, str> {
        if self.url {
            Cow::Owned(url_encode(value))
        } else {
            Cow::Borrowed(value)
        }
    }

    /// `<EncodingType>url</EncodingType>` when the client asked for it.
    fn write_type(self, w: &mut XmlWriter) {
        if self.url {
            w.elem("EncodingType", "url");
        }
    }
}

/// Everything but RFC 3986 unreserved characters and `/`: space becomes `%20` and `+`
/// becomes `%2B`, so both `unquote` and `unquote_plus` (botocore) decode the key unchanged.
const KEY_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Percent-encodes a key (or prefix) for `encoding-type=url` answers and `Location` URLs.
pub(crate) fn url_encode(value: &str) -> String {
    utf8_percent_encode(value, KEY_ENCODE_SET).to_string()
}

/// The opaque continuation token: the key (or common prefix) to resume after.
fn encode_token(resume_after: &str) -> String {
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

/// A non-negative integer query parameter; `default` when absent, InvalidArgument when it is
/// not a number or negative.
pub(crate) fn int_param(query: &Query, name: &str, default: usize) -> Result<usize> {
    match query.get(name) {
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
pub(crate) fn max_param(query: &Query, name: &str) -> Result<usize> {
    Ok(int_param(query, name, MAX_PAGE)?.min(MAX_PAGE))
}

/// Empty query values mean "not given" for markers, delimiters and prefixes.
fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(raw: &str) -> Query {
        Query::parse(Some(raw))
    }

    #[test]
    fn url_encoding_keeps_slashes_and_escapes_the_rest() {
        assert_eq!(url_encode("a b+c/d"), "a%20b%2Bc/d");
        assert_eq!(url_encode("café/~x-y_z.txt"), "caf%C3%A9/~x-y_z.txt");
        assert_eq!(url_encode("a&b=c?d%e\u{1}"), "a%26b%3Dc%3Fd%25e%01");
        assert_eq!(url_encode(""), "");
    }

    #[test]
    fn encoding_type_is_url_or_nothing() {
        let url = Encoding::parse(&query("encoding-type=url")).unwrap();
        assert_eq!(url.apply("a b"), "a%20b");
        let plain = Encoding::parse(&query("prefix=x")).unwrap();
        assert_eq!(plain.apply("a b"), "a b");
        let err = Encoding::parse(&query("encoding-type=base64")).unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
    }

    #[test]
    fn continuation_token_round_trips() {
        for key in ["a", "photos/2024/", "café +?&=/x", "\u{10FFFF}"] {
            let token = encode_token(key);
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(decode_token(&token).unwrap(), key);
        }
        for bad in ["", "!!!", "/w==", &URL_SAFE_NO_PAD.encode([0xff, 0xfe])] {
            let err = decode_token(bad).unwrap_err();
            assert_eq!(err.code, Code::InvalidArgument, "{bad}");
            assert_eq!(
                err.message(),
                "The continuation token provided is incorrect"
            );
        }
    }

    #[test]
    fn max_params_default_cap_and_refuse_garbage() {
        assert_eq!(max_param(&query(""), "max-keys").unwrap(), 1000);
        assert_eq!(max_param(&query("max-keys=5"), "max-keys").unwrap(), 5);
        assert_eq!(max_param(&query("max-keys=0"), "max-keys").unwrap(), 0);
        assert_eq!(
            max_param(&query("max-keys=5000"), "max-keys").unwrap(),
            1000
        );
        for bad in ["max-keys=-1", "max-keys=ten", "max-keys=", "max-keys=1.5"] {
            assert_eq!(
                max_param(&query(bad), "max-keys").unwrap_err().code,
                Code::InvalidArgument,
                "{bad}"
            );
        }
        assert_eq!(
            int_param(&query("part-number-marker=7"), "part-number-marker", 0).unwrap(),
            7
        );
    }

    #[test]
    fn next_marker_is_the_last_entry_returned() {
        let object = |key: &str| ObjectInfo {
            key: key.into(),
            size: 0,
            etag: String::new(),
            last_modified: std::time::UNIX_EPOCH,
            headers: Default::default(),
            checksum: None,
            parts: vec![],
        };
        let mut page = ListPage {
            objects: vec![object("a"), object("c")],
            common_prefixes: vec!["b/".into()],
            is_truncated: true,
            next_marker: None,
        };
        assert_eq!(next_marker(&page).as_deref(), Some("c"));
        page.common_prefixes.push("d/".into());
        assert_eq!(next_marker(&page).as_deref(), Some("d/"));
        page.next_marker = Some("e".into());
        assert_eq!(next_marker(&page).as_deref(), Some("e"));
        page.is_truncated = false;
        assert_eq!(next_marker(&page), None);
    }
}
