//! Every request the cache does not answer goes to the origin, re-signed with the edge's key,
//! and its answer comes back unchanged. Bodies are checked on the way (payload hash, chunk
//! signatures) and aws-chunked ones keep their trailing checksums. Multipart uploads take the
//! spool (upload.rs): parts answered from the edge's disk, Complete only once the store holds
//! them all (kept alive as S3 does when that takes long); successful uploads may be written
//! through into the cache.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use outpost_store::error::{Code, Error, Result};
use outpost_store::s3::auth::{self, Identity};
use outpost_store::s3::body::BodyLimits;
use outpost_store::s3::kept_alive;
use outpost_store::s3::ops::multipart::object_location;
use outpost_store::s3::route::{Endpoint, ListPartsParams, PartParams, Route};
use outpost_store::s3::xml::{XmlWriter, iso8601, read_small_body};

use crate::app::Edge;
use crate::cache::key;
use crate::origin::OriginRequest;
use crate::pipeline::{Object, Response, origin_path, s3_object};
use crate::respond::streamed;
use crate::upload::PartOf;

pub(crate) fn origin_error(e: crate::origin::OriginError) -> Error {
    // The client's body failed the edge's own checks (chunk signature, payload hash): that
    // error is the answer, not the origin's state.
    if let crate::origin::OriginError::Body(body) = e {
        // Body layers wrap it in axum errors, one per layer.
        let mut cause = body.into_inner();
        loop {
            cause = match cause.downcast::<Error>() {
                Ok(checked) => return *checked,
                Err(other) => match other.downcast::<axum::Error>() {
                    Ok(layer) => layer.into_inner(),
                    Err(other) => return Error::msg(Code::IncompleteBody, other.to_string()),
                },
            };
        }
    }
    tracing::warn!(error = %e, "origin request failed");
    crate::origin::client_error(e.code())
}

/// UploadPart: checked and spooled durably at the edge, answered at once with the part's ETag
/// (and checksum); the relay workers take it to the store (`upload.rs`).
pub(crate) async fn upload_part(
    edge: &Arc<Edge>,
    parts: &http::request::Parts,
    body: Body,
    route: &Route,
    part: &PartParams,
    authenticated: auth::Authenticated,
) -> Result<Response> {
    if authenticated.identity == Identity::Anonymous {
        return Err(Error::new(Code::AccessDenied));
    }
    let (upload_id, part_number) = (part.upload_id.as_str(), part.part_number);
    if !edge.spool.is_known(upload_id) {
        check_upload(edge, route, upload_id).await?;
        edge.spool.mark_known(upload_id);
    }
    let declared = ["x-amz-decoded-content-length", "content-length"]
        .iter()
        .find_map(|h| parts.headers.get(*h)?.to_str().ok()?.parse().ok());
    let (body, trailers) = auth::verified_body(client_body(edge, body), authenticated.payload);
    let spooled = edge
        .spool
        .put_part(
            PartOf {
                bucket: &route.bucket,
                key: &route.key,
                upload_id,
                number: part_number,
            },
            &parts.headers,
            declared,
            body,
            trailers,
        )
        .await?;
    let mut response = http::Response::builder()
        .header(http::header::ETAG, format!("\"{}\"", spooled.md5_hex))
        .header(http::header::CONTENT_LENGTH, 0);
    if let Some((name, value)) = spooled.checksum {
        response = response.header(name, value);
    }
    Ok(response.body(Body::empty()).expect("valid response"))
}

/// ListParts answers from what the edge holds when parts went through it (some may not be at
/// the store yet: a client resuming an upload sees them), otherwise from the store.
pub(crate) async fn list_parts(
    edge: &Arc<Edge>,
    parts: http::request::Parts,
    body: Body,
    route: &Route,
    list: &ListPartsParams,
    authenticated: auth::Authenticated,
) -> Result<Response> {
    let upload_id = &list.upload_id;
    let held = (authenticated.identity != Identity::Anonymous)
        .then(|| edge.spool.parts(upload_id))
        .flatten();
    let Some(held) = held else {
        return relay(edge, parts, body, route, authenticated).await;
    };
    let (marker, max) = (list.part_number_marker, list.max_parts);
    let after: Vec<_> = held.into_iter().filter(|p| p.number > marker).collect();
    let truncated = after.len() > max;
    let shown = &after[..after.len().min(max)];
    let owner = edge.config.access_key_id.as_deref().unwrap_or_default();
    let mut w = XmlWriter::new("ListPartsResult");
    w.elem("Bucket", &route.bucket)
        .elem("Key", &route.key)
        .elem("UploadId", upload_id)
        .elem("PartNumberMarker", marker)
        .elem(
            "NextPartNumberMarker",
            shown.last().map_or(marker, |p| p.number),
        )
        .elem("MaxParts", max)
        .elem("IsTruncated", truncated);
    for part in shown {
        w.open("Part")
            .elem("PartNumber", part.number)
            .elem("LastModified", iso8601(part.modified))
            .elem("ETag", format!("\"{}\"", part.md5_hex))
            .elem("Size", part.size);
        if let Some((name, value)) = &part.checksum {
            let algorithm = name
                .trim_start_matches("x-amz-checksum-")
                .to_ascii_uppercase();
            w.elem(&format!("Checksum{algorithm}"), value);
        }
        w.close();
    }
    w.owner("Initiator", owner)
        .owner("Owner", owner)
        .elem("StorageClass", "STANDARD");
    Ok(outpost_store::s3::xml_response(w.finish()))
}

/// The first part of an upload new to this edge: does the store know the upload? A part for
/// an unknown one is NoSuchUpload at once, as from the store. When the store cannot be asked
/// the part is spooled anyway (that is what the spool is for) and Complete will tell.
async fn check_upload(edge: &Arc<Edge>, route: &Route, upload_id: &str) -> Result<()> {
    let query = format!(
        "max-parts=1&uploadId={}",
        auth::sigv4::uri_encode(upload_id, false)
    );
    let request = OriginRequest {
        method: Method::GET,
        path_and_query: origin_path(&route.bucket, &route.key, &query),
        headers: HeaderMap::new(),
        anonymous: false,
        aws_chunked: false,
    };
    match edge.origins.fetch(&request).await {
        Ok(response) if response.status() == http::StatusCode::NOT_FOUND => {
            Err(Error::new(Code::NoSuchUpload))
        }
        _ => Ok(()),
    }
}

/// Complete waits until every part spooled for the upload is at the store (the client never
/// sees success for data the store does not hold), then goes to the store like Abort; either
/// ends the upload's spool. A wait that outlasts a few seconds is answered as S3 answers a long
/// Complete ([`kept_alive`]), so a large upload whose relay lags the client by minutes still
/// completes in one call.
pub(crate) async fn finish_upload(
    edge: &Arc<Edge>,
    parts: http::request::Parts,
    body: Body,
    route: &Route,
    upload_id: String,
    authenticated: auth::Authenticated,
    request_id: &str,
) -> Result<Response> {
    if parts.method != Method::POST || authenticated.identity == Identity::Anonymous {
        // Abort, or a Complete the store will refuse: nothing to wait for.
        let response = relay(edge, parts, body, route, authenticated).await?;
        if response.status().is_success() {
            edge.spool.forget(&upload_id);
        }
        return Ok(response);
    }
    let body = read_small_body(client_body(edge, body), MAX_COMPLETE_BODY).await?;
    let location = client_location(edge, &parts, route);
    let resource = parts.uri.path().to_owned();
    let (edge, route) = (Arc::clone(edge), route.clone());
    let work = async move {
        let wait = Duration::from_secs(edge.config.relay_wait_secs);
        edge.spool.settled(&upload_id, wait).await?;
        let response = relay(&edge, parts, Body::from(body), &route, authenticated).await?;
        if !response.status().is_success() {
            return Ok(response);
        }
        edge.spool.forget(&upload_id);
        write_through(&edge, &route.bucket, &route.key);
        let (mut head, body) = response.into_parts();
        let document = located(complete_document(body).await?, &location);
        head.headers.remove(http::header::CONTENT_LENGTH);
        Ok(Response::from_parts(head, Body::from(document)))
    };
    kept_alive::answer(work, resource, request_id.to_owned()).await
}

/// Complete's `<Location>` for the edge's client: the edge as that client addressed it.
fn client_location(edge: &Edge, parts: &http::request::Parts, route: &Route) -> String {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    object_location(
        host,
        edge.config.base_domain.as_deref(),
        &route.bucket,
        &route.key,
    )
}

/// The store's Complete answer, read whole (it is small).
async fn complete_document(body: Body) -> Result<Bytes> {
    axum::body::to_bytes(body, MAX_COMPLETE_BODY)
        .await
        .map_err(|e| {
            Error::msg(
                Code::ServiceUnavailable,
                format!("The store's answer to CompleteMultipartUpload broke off: {e}"),
            )
        })
}

/// `document` with its `<Location>` (the store's own address) replaced by `location`.
fn located(document: Bytes, location: &str) -> Bytes {
    let text = String::from_utf8_lossy(&document);
    let (Some(start), Some(end)) = (text.find("<Location>"), text.find("</Location>")) else {
        return document;
    };
    let start = start + "<Location>".len();
    if end < start {
        return document;
    }
    let escaped = quick_xml::escape::escape(location);
    Bytes::from(format!("{}{escaped}{}", &text[..start], &text[end..]))
}

/// A CompleteMultipartUpload body of 10,000 parts with checksums is well under this.
const MAX_COMPLETE_BODY: usize = 4 << 20;

/// Fills, in the background, the cache entries of a just-uploaded object whose behaviour asks
/// for write-through: the S3 face's (signed readers) and those of the sites serving its bucket.
/// The fill is an ordinary one (head and body as a GET sees them, collapsing with any reader
/// who comes meanwhile). The spooled parts are not reused: a part leaves the spool as soon as
/// the store holds it, so abandoned uploads never pin edge disk.
fn write_through(edge: &Arc<Edge>, bucket: &str, key: &str) {
    let mut objects = Vec::new();
    if edge.s3_behavior.write_through {
        objects.push(s3_object(edge, bucket, key, None, false));
    }
    for site in edge.sites.for_bucket(bucket) {
        let behavior = site.behavior(&format!("/{key}"), &edge.default_behavior);
        // An entry keyed on request headers has no one value to fill.
        if behavior.write_through && behavior.header_keys.is_empty() {
            objects.push(Object::new(
                &site.origins,
                &site.id,
                bucket,
                key,
                None,
                behavior,
                false,
            ));
        }
    }
    for object in objects {
        let edge = Arc::clone(edge);
        tokio::spawn(async move { object.lookup(&edge, None).await });
    }
}

/// The client's request body under the edge's limits for slow clients (the store's rules).
fn client_body(edge: &Edge, body: Body) -> outpost_store::engine::ByteStream {
    let config = &edge.config;
    let limits = BodyLimits::new(
        config.body_idle_timeout_secs,
        config.body_min_rate_bytes_per_sec,
        config.body_min_rate_window_secs,
    );
    let metrics = Arc::clone(&edge.metrics);
    outpost_store::s3::body::client_body(body, limits, move |n| {
        metrics.requests.add_bytes_in(n as u64)
    })
}

/// Every other operation: relayed to the origin, re-signed, its answer returned unchanged.
/// A write through the edge drops the edge's copies of that object at once.
pub(crate) async fn relay(
    edge: &Arc<Edge>,
    parts: http::request::Parts,
    body: Body,
    route: &Route,
    authenticated: auth::Authenticated,
) -> Result<Response> {
    let anonymous = authenticated.identity == Identity::Anonymous;
    let mut headers = parts.headers.clone();
    let (body, trailers) =
        auth::verified_body(client_body(edge, body), authenticated.payload.clone());
    let mut content_length = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let chunked = matches!(authenticated.payload, auth::Payload::Chunked { .. });
    let with_trailer = chunked && headers.contains_key("x-amz-trailer");
    let body = if with_trailer {
        // The edge checked the chunk signatures; the origin gets the data re-framed unsigned,
        // with the trailing checksum it verifies and stores (chunked transfer: the framed
        // length is not known up front).
        content_length = None;
        auth::chunked::encode_unsigned(body, trailers)
    } else if chunked {
        // No trailer: the origin gets the plain body.
        content_length = headers
            .get("x-amz-decoded-content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        headers.remove("x-amz-decoded-content-length");
        strip_aws_chunked(&mut headers);
        body
    } else {
        body
    };
    // The store commits a body once it has all of it: the edge's own checks (which end with
    // the body) must pass before the last byte leaves. Small bodies are checked whole first;
    // larger ones stream with their last piece held back until the checks pass.
    let body = match content_length {
        Some(len) if len <= CHECK_WHOLE_BELOW => {
            Body::from(read_small_body(body, CHECK_WHOLE_BELOW as usize).await?)
        }
        _ => Body::from_stream(auth::held_until_checked(body)),
    };
    let request = OriginRequest {
        method: parts.method.clone(),
        path_and_query: origin_path(
            &route.bucket,
            &route.key,
            &key::strip_auth_params(parts.uri.query()),
        ),
        headers,
        anonymous,
        aws_chunked: with_trailer,
    };
    let response = edge
        .origins
        .relay(request, body, content_length)
        .await
        .map_err(origin_error)?;
    if route.endpoint == Endpoint::DeleteObjects {
        // The keys are in a body that went by as a stream, and a quiet answer does not list
        // them: the bucket's copies go, so none of them is served after its deletion.
        edge.cache.invalidate(&[format!("/{}/*", route.bucket)]);
    }
    if parts.method != Method::GET && parts.method != Method::HEAD && !route.key.is_empty() {
        edge.cache
            .invalidate(&[format!("/{}/{}", route.bucket, route.key)]);
        let stored = matches!(
            route.endpoint,
            Endpoint::PutObject | Endpoint::CopyObject(_)
        );
        if stored && response.status().is_success() {
            write_through(edge, &route.bucket, &route.key);
        }
    }
    Ok(streamed(response))
}

/// Bodies up to this size are read and checked whole before the origin request starts (a
/// zero-length body would otherwise be complete at the origin before the edge's checks ran).
const CHECK_WHOLE_BELOW: u64 = 1 << 20;

fn strip_aws_chunked(headers: &mut HeaderMap) {
    let Some(v) = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    let rest: Vec<&str> = v
        .split(',')
        .map(str::trim)
        .filter(|e| !e.eq_ignore_ascii_case("aws-chunked") && !e.is_empty())
        .collect();
    if rest.is_empty() {
        headers.remove(http::header::CONTENT_ENCODING);
    } else if let Ok(v) = HeaderValue::from_str(&rest.join(",")) {
        headers.insert(http::header::CONTENT_ENCODING, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_location_of_a_completed_upload_is_replaced() {
        let doc = Bytes::from("<R><Location>http://10.0.0.5:9000/b/k</Location><Key>k</Key></R>");
        assert_eq!(
            &located(doc, "http://edge/b/k&x")[..],
            b"<R><Location>http://edge/b/k&amp;x</Location><Key>k</Key></R>"
        );
        let error = Bytes::from("<Error><Code>X</Code></Error>");
        assert_eq!(located(error.clone(), "http://edge/b/k"), error);
    }

    #[test]
    fn aws_chunked_is_removed_from_content_encoding() {
        let mut h = HeaderMap::new();
        h.insert("content-encoding", "aws-chunked,gzip".parse().unwrap());
        strip_aws_chunked(&mut h);
        assert_eq!(h.get("content-encoding").unwrap(), "gzip");
        h.insert("content-encoding", "aws-chunked".parse().unwrap());
        strip_aws_chunked(&mut h);
        assert!(h.get("content-encoding").is_none());
    }
}
