//! Every request the cache does not answer goes to the origin, re-signed with the edge's key,
//! and its answer comes back unchanged. Bodies are checked on the way (payload hash, chunk
//! signatures) and aws-chunked ones keep their trailing checksums.

use std::sync::Arc;

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method};
use outpost_store::error::{Code, Error, Result};
use outpost_store::s3::auth::{self, Identity};
use outpost_store::s3::route::Route;

use crate::app::Edge;
use crate::cache::key;
use crate::origin::OriginRequest;
use crate::pipeline::{Response, origin_path};
use crate::respond::streamed;

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
    Error::msg(Code::ServiceUnavailable, "The origin is unreachable.")
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
    let (body, trailers) = auth::verified_body(
        Box::pin(futures::TryStreamExt::map_err(
            body.into_data_stream(),
            |e| {
                Error::msg(
                    Code::IncompleteBody,
                    format!("The request body could not be read: {e}"),
                )
            },
        )),
        authenticated.payload.clone(),
    );
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
        .relay(request, Body::from_stream(body), content_length)
        .await
        .map_err(origin_error)?;
    if parts.method != Method::GET && parts.method != Method::HEAD && !route.key.is_empty() {
        edge.cache
            .invalidate(&[format!("/{}/{}", route.bucket, route.key)]);
    }
    Ok(streamed(response))
}

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
