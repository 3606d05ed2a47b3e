//! Authentication as a stage: [`authenticate`] checks the request head (SigV4 header,
//! SigV4 presigned query, SigV2 presigned query, or anonymous) and [`verified_body`] wraps the
//! body so that what the handler reads is de-chunked and checked (payload SHA-256, chunk
//! signature chain, trailers captured). A body whose check fails ends in an error instead of
//! its last chunk, so nothing built from it is committed.

pub mod chunked;
pub mod credentials;
pub mod presign;
pub mod sigv2;
pub mod sigv4;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub use credentials::{Credentials, Keyring, SecretKey};

use crate::engine::ByteStream;
use subtle::ConstantTimeEq;

use crate::error::{Code, Error, Result};

/// Who sent the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    /// A request signed with this access key id (verified).
    Key(String),
}

/// What [`authenticate`] needs besides the request.
pub struct AuthParams<'a> {
    pub keyring: &'a Keyring,
    pub region: &'a str,
    pub now: SystemTime,
    /// Largest accepted difference between the request date and `now` (S3: 15 minutes).
    pub max_skew: Duration,
}

/// The signing material a chunk-signature chain continues from.
#[derive(Clone)]
pub struct ChunkSigning {
    pub signing_key: [u8; 32],
    /// `YYYYMMDDTHHMMSSZ` from the request.
    pub amz_date: String,
    /// `date/region/s3/aws4_request`.
    pub scope: String,
    /// The seed signature: the request's header signature.
    pub seed_signature: String,
}

/// How the body must be checked, decided from `x-amz-content-sha256` and friends.
#[derive(Clone)]
pub enum Payload {
    /// Nothing to verify (anonymous, `UNSIGNED-PAYLOAD`, presigned URLs).
    Unsigned,
    /// The signed hex SHA-256 of the body (XAmzContentSHA256Mismatch on mismatch).
    Sha256([u8; 32]),
    /// `Content-Encoding: aws-chunked` framing. `signing` is set for the
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` forms; `trailer` when `x-amz-trailer`
    /// announces a trailing header; `decoded_length` from `x-amz-decoded-content-length`.
    Chunked {
        signing: Option<ChunkSigning>,
        trailer: bool,
        decoded_length: Option<u64>,
    },
}

/// A request head whose signature (if any) has been verified.
pub struct Authenticated {
    pub identity: Identity,
    pub payload: Payload,
}

/// Trailing headers of an aws-chunked body, filled once the body has been read to the end.
#[derive(Clone, Default)]
pub struct Trailers(Arc<Mutex<Option<http::HeaderMap>>>);

impl Trailers {
    pub fn set(&self, headers: http::HeaderMap) {
        *self.0.lock().expect("trailers lock") = Some(headers);
    }

    /// The trailer value for `name` (lower-case), once the body has ended.
    pub fn get(&self, name: &str) -> Option<String> {
        let guard = self.0.lock().expect("trailers lock");
        guard.as_ref()?.get(name)?.to_str().ok().map(str::to_owned)
    }
}

/// Checks the request's signature, if it has one. Anonymous requests pass as
/// [`Identity::Anonymous`]; whether that is enough is the caller's decision.
///
/// Errors: InvalidAccessKeyId, SignatureDoesNotMatch, AuthorizationHeaderMalformed,
/// AuthorizationQueryParametersError, RequestTimeTooSkewed, AccessDenied (expired presigned
/// URL), InvalidRequest / InvalidArgument for malformed inputs.
pub fn authenticate(req: &http::request::Parts, params: &AuthParams) -> Result<Authenticated> {
    let header = req
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let query = req.uri.query().unwrap_or("");
    let presigned = query.contains("X-Amz-Signature=") || query.contains("Signature=");
    match header {
        Some(h) if h.starts_with("AWS4-HMAC-SHA256 ") => header_auth(req, h, params),
        Some(_) => Err(Error::msg(
            Code::InvalidRequest,
            "Unsupported Authorization Type. Please use AWS4-HMAC-SHA256.",
        )),
        None if presigned => Err(Error::msg(
            Code::NotImplemented,
            "Presigned URLs are not supported yet.",
        )),
        None => Ok(Authenticated {
            identity: Identity::Anonymous,
            payload: Payload::Unsigned,
        }),
    }
}

struct AuthHeader<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_auth_header(h: &str) -> Option<AuthHeader<'_>> {
    let rest = h.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for field in rest.split(',').map(str::trim) {
        match field.split_once('=')? {
            ("Credential", v) => credential = Some(v),
            ("SignedHeaders", v) => signed = Some(v),
            ("Signature", v) => signature = Some(v),
            _ => {}
        }
    }
    let mut scope = credential?.splitn(5, '/');
    let header = AuthHeader {
        access_key: scope.next()?,
        date: scope.next()?,
        region: scope.next()?,
        service: scope.next()?,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    };
    (scope.next()? == "aws4_request").then_some(header)
}

fn header_auth(req: &http::request::Parts, h: &str, params: &AuthParams) -> Result<Authenticated> {
    let auth =
        parse_auth_header(h).ok_or_else(|| Error::new(Code::AuthorizationHeaderMalformed))?;
    if auth.service != "s3" {
        return Err(Error::new(Code::AuthorizationHeaderMalformed));
    }
    let secret = params
        .keyring
        .secret(auth.access_key)
        .ok_or_else(|| Error::new(Code::InvalidAccessKeyId))?;
    let get = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    let amz_date = get("x-amz-date").ok_or_else(|| {
        Error::msg(
            Code::AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header",
        )
    })?;
    check_skew(amz_date, params)?;
    let content_sha = get("x-amz-content-sha256").ok_or_else(|| {
        Error::msg(
            Code::InvalidRequest,
            "Missing required header for this request: x-amz-content-sha256",
        )
    })?;
    let canonical_headers: String = auth
        .signed_headers
        .iter()
        .map(|name| {
            let values: Vec<String> = req
                .headers
                .get_all(*name)
                .iter()
                .map(|v| sigv4::canonical_header_value(v.as_bytes()))
                .collect();
            format!("{name}:{}\n", values.join(","))
        })
        .collect();
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        sigv4::canonical_uri(req.uri.path()),
        sigv4::canonical_query(req.uri.query(), ""),
        canonical_headers,
        auth.signed_headers.join(";"),
        content_sha
    );
    let scope = format!("{}/{}/s3/aws4_request", auth.date, auth.region);
    let key = sigv4::signing_key(secret.expose(), auth.date, auth.region, "s3");
    let expected = sigv4::signature(
        &key,
        &sigv4::string_to_sign(amz_date, &scope, &canonical_request),
    );
    if !bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        return Err(Error::new(Code::SignatureDoesNotMatch));
    }
    let payload = match content_sha {
        "UNSIGNED-PAYLOAD" => Payload::Unsigned,
        v if v.len() == 64 => {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(v, &mut hash).map_err(|_| Error::new(Code::InvalidArgument))?;
            Payload::Sha256(hash)
        }
        v if v.starts_with("STREAMING-") => {
            return Err(Error::msg(
                Code::NotImplemented,
                "aws-chunked uploads are not supported yet.",
            ));
        }
        _ => {
            return Err(Error::msg(
                Code::InvalidArgument,
                "Invalid x-amz-content-sha256",
            ));
        }
    };
    Ok(Authenticated {
        identity: Identity::Key(auth.access_key.to_owned()),
        payload,
    })
}

fn check_skew(amz_date: &str, params: &AuthParams) -> Result<()> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(amz_date, &fmt)
        .map_err(|_| Error::msg(Code::AccessDenied, "Invalid x-amz-date"))?
        .assume_utc();
    let now = time::OffsetDateTime::from(params.now);
    if (now - t).unsigned_abs() > params.max_skew {
        return Err(Error::new(Code::RequestTimeTooSkewed));
    }
    Ok(())
}

/// Wraps the raw body so that it yields the decoded payload and fails at the end if the
/// checks the [`Payload`] demands do not hold. Trailers (if any) land in the returned handle.
pub fn verified_body(raw: ByteStream, payload: Payload) -> (ByteStream, Trailers) {
    use futures::StreamExt;
    use sha2::Digest;
    let trailers = Trailers::default();
    let stream = match payload {
        Payload::Unsigned => raw,
        Payload::Sha256(expected) => {
            let state = (raw, Some(sha2::Sha256::new()));
            futures::stream::unfold(state, move |(mut raw, hasher)| async move {
                let mut hasher = hasher?;
                match raw.next().await {
                    Some(Ok(chunk)) => {
                        hasher.update(&chunk);
                        Some((Ok(chunk), (raw, Some(hasher))))
                    }
                    Some(Err(e)) => Some((Err(e), (raw, None))),
                    None if <[u8; 32]>::from(hasher.finalize()) == expected => None,
                    None => Some((
                        Err(Error::new(Code::XAmzContentSHA256Mismatch)),
                        (raw, None),
                    )),
                }
            })
            .boxed()
        }
        Payload::Chunked { .. } => futures::stream::once(async {
            Err(Error::msg(
                Code::NotImplemented,
                "aws-chunked uploads are not supported yet.",
            ))
        })
        .boxed(),
    };
    (stream, trailers)
}
