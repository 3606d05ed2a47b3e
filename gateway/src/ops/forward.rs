//! Every request the cache does not answer and the edge does not hold is forwarded to the
//! origin, re-signed with the edge's key, and its answer comes back unchanged. Bodies are
//! checked on the way (payload hash, chunk signatures) and aws-chunked ones keep their trailing
//! checksums. A write through the edge drops the edge's copies of the object, and successful
//! uploads may be written through into the cache.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method};
use outpost_store::error::Result;
use outpost_store::s3::auth;
use outpost_store::s3::context::Context;
use outpost_store::s3::route::Endpoint;
use outpost_store::s3::xml::read_small_body;

use crate::cache::key;
use crate::cache::object::Object;
use crate::edge::Edge;
use crate::origin::{self, OriginError, OriginRequest};

/// Every other operation: forwarded to the origin, re-signed, its answer returned unchanged.
/// A write through the edge drops the edge's copies of that object at once.
pub(crate) async fn forward(edge: &Arc<Edge>, context: Context) -> Result<Response> {
    let Context {
        parts,
        route,
        access,
        body,
        ..
    } = context;
    let mut headers = parts.headers.clone();
    let chunked = matches!(body.payload(), auth::Payload::Chunked { .. });
    let (body, trailers) = body.into_stream();
    let mut content_length = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
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
    let anonymous = edge.relay_as(&parts, &access, &mut headers);
    let request = OriginRequest {
        method: parts.method.clone(),
        path_and_query: origin::path(
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
        .send(request, body, content_length)
        .await
        .map_err(OriginError::into_client_error)?;
    if matches!(
        route.endpoint,
        Endpoint::PutBucketCors | Endpoint::DeleteBucketCors
    ) {
        edge.cors.forget("s3", &route.bucket).await;
        for site in edge.sites.for_bucket(&route.bucket) {
            edge.cors.forget(&site.id, &route.bucket).await;
        }
    }
    if changes_access(&route.endpoint) && response.status().is_success() {
        // The client's next request through this edge sees what it changed (a bucket it
        // created is its own at once).
        edge.poller.refresh().await;
    }
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
    Ok(origin::to_client(response))
}

/// A request the edge cannot check (a SigV2 presigned URL, see
/// [`crate::access::is_foreign_sigv2`]), sent to the origin as the client signed it: path-style
/// (SigV2 signs `/bucket/key` either way), its query and headers kept, not signed by the edge,
/// its body streamed as it comes; nothing is cached, and a write drops the edge's copies.
pub(crate) async fn relay_untouched(
    edge: &Arc<Edge>,
    parts: http::request::Parts,
    body: Body,
) -> Result<Response> {
    let route = outpost_store::s3::route_request(&parts, edge.config.base_domain.as_deref())?;
    let mut headers = parts.headers.clone();
    crate::access::drop_claims(&mut headers);
    let content_length = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let request = OriginRequest {
        method: parts.method.clone(),
        path_and_query: origin::path(&route.bucket, &route.key, parts.uri.query().unwrap_or("")),
        headers,
        anonymous: true,
        aws_chunked: false,
    };
    let response = edge
        .origins
        .send(request, body, content_length)
        .await
        .map_err(OriginError::into_client_error)?;
    if parts.method != Method::GET && parts.method != Method::HEAD && !route.key.is_empty() {
        edge.cache
            .invalidate(&[format!("/{}/{}", route.bucket, route.key)]);
    }
    Ok(origin::to_client(response))
}

/// Operations whose success changes what the edge's access document says.
fn changes_access(endpoint: &Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::CreateBucket
            | Endpoint::DeleteBucket
            | Endpoint::PutBucketPolicy
            | Endpoint::DeleteBucketPolicy
            | Endpoint::PutPublicAccessBlock
            | Endpoint::DeletePublicAccessBlock
            | Endpoint::PutBucketAcl
    )
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

/// Fills, in the background, the cache entries of a just-uploaded object whose behaviour asks
/// for write-through: the S3 face's (signed readers) and those of the sites serving its bucket.
/// The fill is an ordinary one (head and body as a GET sees them, collapsing with any reader
/// who comes meanwhile). The spooled parts are not reused: a part leaves the spool as soon as
/// the store holds it, so abandoned uploads never pin edge disk.
pub(crate) fn write_through(edge: &Arc<Edge>, bucket: &str, key: &str) {
    let mut objects = Vec::new();
    if edge.s3_behavior.write_through {
        objects.push(edge.s3_entry(bucket, key, None, false).into_owned());
    }
    for site in edge.sites.for_bucket(bucket) {
        let behavior = site.behavior(&format!("/{key}"), &edge.default_behavior);
        // An entry keyed on request headers has no one value to fill.
        if behavior.write_through && behavior.header_keys.is_empty() {
            objects.push(
                Object::new(&site.origins, &site.id, bucket, key, None, behavior, false)
                    .into_owned(),
            );
        }
    }
    for object in objects {
        let edge = Arc::clone(edge);
        tokio::spawn(async move { object.lookup(&edge.cache, None).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
