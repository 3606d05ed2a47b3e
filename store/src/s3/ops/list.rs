//! ListObjects (v1), ListObjectsV2, ListObjectVersions, ListMultipartUploads.
//!
//! Each reads one page from the engine (which answers NoSuchBucket for a missing bucket) and
//! writes it as XML. With `encoding-type=url`, every element carrying a key, a prefix, a
//! delimiter or a marker is percent-encoded, as S3 does for keys that XML 1.0 cannot carry.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::engine::{ListPage, ListQuery, ListUploadsQuery, ObjectInfo, UploadInfo};
use crate::error::Result;
use crate::s3::headers::quote_etag;
use crate::s3::route::params::{NULL_VERSION, encode_token};
use crate::s3::route::{
    Encoding, ListObjectsParams, ListObjectsV2Params, ListParams, ListUploadsParams,
    ListVersionsParams,
};
use crate::s3::xml::{XmlWriter, iso8601};
use crate::s3::{Req, Response, S3, xml_response};

pub async fn list_objects_v2(s3: &S3, req: Req, p: ListObjectsV2Params) -> Result<Response> {
    let params = &p.list;
    let page = list_page(s3, req.bucket(), params, p.resume_after.clone()).await?;

    let enc = params.encoding;
    let mut w = XmlWriter::new("ListBucketResult");
    w.elem("Name", req.bucket())
        .elem("Prefix", enc.apply(&params.prefix));
    w.opt(
        "Delimiter",
        params.delimiter.as_deref().map(|d| enc.apply(d)),
    );
    w.elem("MaxKeys", params.max);
    enc.write_type(&mut w);
    w.elem("KeyCount", page.objects.len() + page.common_prefixes.len())
        .elem("IsTruncated", page.is_truncated)
        .opt("ContinuationToken", p.continuation_token.as_deref());
    w.opt(
        "NextContinuationToken",
        next_marker(&page).map(|m| encode_token(&m)),
    );
    w.opt("StartAfter", p.start_after.as_deref().map(|s| enc.apply(s)));
    let owner = p.fetch_owner.then_some(s3.owner_id.as_str());
    write_page(&mut w, &page, Row::Contents, enc, owner);
    Ok(xml_response(w.finish()))
}

pub async fn list_objects_v1(s3: &S3, req: Req, p: ListObjectsParams) -> Result<Response> {
    let (params, marker) = (&p.list, p.marker.as_deref());
    let page = list_page(s3, req.bucket(), params, p.marker.clone()).await?;

    let enc = params.encoding;
    let mut w = XmlWriter::new("ListBucketResult");
    w.elem("Name", req.bucket())
        .elem("Prefix", enc.apply(&params.prefix))
        .elem("Marker", enc.apply(marker.unwrap_or("")));
    w.opt(
        "NextMarker",
        next_marker(&page).map(|m| enc.apply(&m).into_owned()),
    );
    w.elem("MaxKeys", params.max);
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
pub async fn list_object_versions(s3: &S3, req: Req, p: ListVersionsParams) -> Result<Response> {
    let params = &p.list;
    let (key_marker, version_marker) = (p.key_marker.as_deref(), p.version_id_marker.as_deref());
    // Each key has only the `null` version, so resuming "after (key, any version)" is
    // resuming after the key.
    let page = list_page(s3, req.bucket(), params, p.key_marker.clone()).await?;

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
    w.elem("MaxKeys", params.max);
    w.opt(
        "Delimiter",
        params.delimiter.as_deref().map(|d| enc.apply(d)),
    );
    enc.write_type(&mut w);
    w.elem("IsTruncated", page.is_truncated);
    write_page(&mut w, &page, Row::Version, enc, Some(&s3.owner_id));
    Ok(xml_response(w.finish()))
}

pub async fn list_multipart_uploads(s3: &S3, req: Req, p: ListUploadsParams) -> Result<Response> {
    let ListParams {
        prefix,
        delimiter,
        max: max_uploads,
        encoding: enc,
    } = &p.list;
    let (enc, max_uploads, delimiter) = (*enc, *max_uploads, delimiter.as_deref());
    let prefix = Some(prefix.as_str()).filter(|p| !p.is_empty());
    let (key_marker, upload_id_marker) = (p.key_marker.as_deref(), p.upload_id_marker.as_deref());
    let query = ListUploadsQuery {
        prefix: prefix.unwrap_or("").to_owned(),
        key_marker: p.key_marker.clone(),
        upload_id_marker: p.upload_id_marker.clone(),
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

/// One page of objects after `start_after` (exclusive).
async fn list_page(
    s3: &S3,
    bucket: &str,
    params: &ListParams,
    start_after: Option<String>,
) -> Result<ListPage> {
    if params.max == 0 {
        // Nothing to list, but a missing bucket is still NoSuchBucket.
        s3.engine.bucket(bucket).await?;
        return Ok(ListPage::default());
    }
    let query = ListQuery {
        prefix: params.prefix.clone(),
        delimiter: params.delimiter.clone(),
        start_after,
        max_keys: params.max,
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

impl Encoding {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_slashes_and_escapes_the_rest() {
        assert_eq!(url_encode("a b+c/d"), "a%20b%2Bc/d");
        assert_eq!(url_encode("café/~x-y_z.txt"), "caf%C3%A9/~x-y_z.txt");
        assert_eq!(url_encode("a&b=c?d%e\u{1}"), "a%26b%3Dc%3Fd%25e%01");
        assert_eq!(url_encode(""), "");
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
            seq: 0,
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
