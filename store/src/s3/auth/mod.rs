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

/// Query parameters that authenticate a request rather than select a response: they never
/// reach a cache key (every presigned URL for one object shares its entry) nor a log line (a
/// presigned URL is a bearer token until it expires).
const AUTH_PARAMS: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
    "x-id",
];

pub fn is_auth_param(name: &str) -> bool {
    AUTH_PARAMS.contains(&name)
}

/// The raw query string without authentication parameters (kept in the order sent).
pub fn without_auth_params(query: Option<&str>) -> String {
    let kept: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && !is_auth_param(p.split('=').next().unwrap_or("")))
        .collect();
    kept.join("&")
}

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
    /// The bucket the request addresses (SigV2 signs it even when it is in the Host header).
    pub bucket: &'a str,
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
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` forms; `decoded_length` from
    /// `x-amz-decoded-content-length`.
    Chunked {
        signing: Option<ChunkSigning>,
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

    /// Every trailer, once the body has ended (none before).
    pub fn all(&self) -> Vec<(String, String)> {
        let guard = self.0.lock().expect("trailers lock");
        guard
            .iter()
            .flat_map(|h| h.iter())
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect()
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
    // An unreadable Authorization header is malformed, not absent: skipping it would let the
    // request on as anonymous.
    let header = req
        .headers
        .get(http::header::AUTHORIZATION)
        .map(|v| v.to_str())
        .transpose()
        .map_err(|_| Error::new(Code::AuthorizationHeaderMalformed))?;
    let query = req.uri.query().unwrap_or("");
    let has = |name: &str| query.split('&').any(|p| p.split('=').next() == Some(name));
    match header {
        Some(h) if h.starts_with("AWS4-HMAC-SHA256 ") => {
            let signed = parse_auth_header(h)
                .ok_or_else(|| Error::new(Code::AuthorizationHeaderMalformed))?;
            verify_v4(req, signed, params)
        }
        Some(_) => Err(Error::msg(
            Code::InvalidRequest,
            "Unsupported Authorization Type. Please use AWS4-HMAC-SHA256.",
        )),
        None if has("X-Amz-Signature") => {
            let signed = presign::parse(query, params)?;
            verify_v4(req, signed, params)
        }
        None if has("Signature") => sigv2::verify_presigned(req, params),
        None => Ok(Authenticated {
            identity: Identity::Anonymous,
            payload: Payload::Unsigned,
        }),
    }
}

/// The SigV4 fields of a request, from its Authorization header or its presigned query.
struct SignedV4 {
    access_key: String,
    /// `YYYYMMDD` from the credential scope.
    date: String,
    region: String,
    signed_headers: Vec<String>,
    signature: String,
    /// From the query when presigned; otherwise filled from the `x-amz-date` header.
    amz_date: String,
    /// Presigned URLs carry their own validity window (checked by [`presign::parse`]), sign
    /// the query minus `X-Amz-Signature`, and report errors as query errors.
    presigned: bool,
}

fn parse_auth_header(h: &str) -> Option<SignedV4> {
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
    SignedV4::new(credential?, signed?, signature?, String::new(), false)
}

impl SignedV4 {
    /// From `AKID/20130524/us-east-1/s3/aws4_request`, `host;x-amz-date` and the signature.
    fn new(
        credential: &str,
        signed_headers: &str,
        signature: &str,
        amz_date: String,
        presigned: bool,
    ) -> Option<SignedV4> {
        let mut scope = credential.splitn(5, '/');
        let (access_key, date, region) = (scope.next()?, scope.next()?, scope.next()?);
        (scope.next()? == "s3" && scope.next()? == "aws4_request").then(|| SignedV4 {
            access_key: access_key.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            signed_headers: signed_headers.split(';').map(str::to_owned).collect(),
            signature: signature.to_owned(),
            amz_date,
            presigned,
        })
    }

    fn malformed(&self, message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
        let code = if self.presigned {
            Code::AuthorizationQueryParametersError
        } else {
            Code::AuthorizationHeaderMalformed
        };
        Error::msg(code, message)
    }
}

fn verify_v4(
    req: &http::request::Parts,
    mut signed: SignedV4,
    params: &AuthParams,
) -> Result<Authenticated> {
    let get = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    if !params.keyring.knows(&signed.access_key) {
        return Err(Error::new(Code::InvalidAccessKeyId));
    }
    if signed.amz_date.is_empty() {
        signed.amz_date = request_date(get("x-amz-date"), get("date")).ok_or_else(|| {
            Error::msg(
                Code::AccessDenied,
                "AWS authentication requires a valid Date or x-amz-date header",
            )
        })?;
    }
    if signed.region != params.region {
        return Err(signed.malformed(format!(
            "The region '{}' is wrong; expecting '{}'",
            signed.region, params.region
        )));
    }
    if !signed.amz_date.starts_with(&signed.date) {
        return Err(signed.malformed("The credential scope date does not match the request date."));
    }
    if !signed.presigned {
        check_skew(parse_amz_date(&signed.amz_date)?, params)?;
    }
    // Presigned URLs sign UNSIGNED-PAYLOAD unless the client sent (and signed) a hash.
    let content_sha = match get("x-amz-content-sha256") {
        Some(v) => v,
        None if signed.presigned => "UNSIGNED-PAYLOAD",
        None => {
            return Err(Error::msg(
                Code::InvalidRequest,
                "Missing required header for this request: x-amz-content-sha256",
            ));
        }
    };
    if !signed.signed_headers.iter().any(|h| h == "host") {
        return Err(signed.malformed("The host header must be signed."));
    }
    let canonical_headers: String = signed
        .signed_headers
        .iter()
        .map(|name| {
            let values: Vec<String> = req
                .headers
                .get_all(name.as_str())
                .iter()
                .map(|v| sigv4::canonical_header_value(v.as_bytes()))
                .collect();
            format!("{name}:{}\n", values.join(","))
        })
        .collect();
    let canonical_request = |uri: &str| {
        format!(
            "{}\n{uri}\n{}\n{canonical_headers}\n{}\n{content_sha}",
            req.method,
            sigv4::canonical_query(
                req.uri.query(),
                if signed.presigned {
                    "X-Amz-Signature"
                } else {
                    ""
                }
            ),
            signed.signed_headers.join(";"),
        )
    };
    let scope = format!("{}/{}/s3/aws4_request", signed.date, signed.region);
    // Known but without a key for this date (a published key outside its window): no
    // signature by it can be checked, so none matches.
    let key = params
        .keyring
        .signing_key(&signed.access_key, &signed.date, &signed.region)
        .ok_or_else(|| Error::new(Code::SignatureDoesNotMatch))?;
    let matches = |uri: &str| {
        let sts = sigv4::string_to_sign(&signed.amz_date, &scope, &canonical_request(uri));
        let expected = sigv4::signature(&key, &sts);
        bool::from(expected.as_bytes().ct_eq(signed.signature.as_bytes()))
    };
    // Clients sign the path as they encoded it; most encode exactly like S3, some encode more
    // (`%2E` for '.'), so the path as sent is tried before the canonical re-encoding.
    let path = req.uri.path();
    let normalized = sigv4::canonical_uri(path);
    if !matches(path) && (normalized == path || !matches(&normalized)) {
        return Err(Error::new(Code::SignatureDoesNotMatch));
    }
    refuse_unsigned_amz_headers(&req.headers, &signed.signed_headers)?;
    let payload = payload_check(req, content_sha, || ChunkSigning {
        signing_key: key,
        amz_date: signed.amz_date.clone(),
        scope: scope.clone(),
        seed_signature: signed.signature.clone(),
    })?;
    Ok(Authenticated {
        identity: Identity::Key(signed.access_key),
        payload,
    })
}

/// AWS refuses a signed request that carries an `x-amz-*` header its signature does not cover:
/// such headers change what a request does (`x-amz-copy-source` turns a PUT into a copy,
/// `x-amz-meta-*` is stored), so anyone holding a presigned URL could otherwise add them.
/// `x-amz-content-sha256` is exempt, as at AWS: its value is the canonical request's last
/// line, so it is covered whether or not it is listed.
fn refuse_unsigned_amz_headers(headers: &http::HeaderMap, signed: &[String]) -> Result<()> {
    let mut unsigned: Vec<&str> = headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|name| name.starts_with("x-amz-") && *name != "x-amz-content-sha256")
        .filter(|name| !signed.iter().any(|s| s == name))
        .collect();
    if unsigned.is_empty() {
        return Ok(());
    }
    unsigned.sort_unstable();
    Err(Error::msg(
        Code::AccessDenied,
        "There were headers present in the request which were not signed",
    )
    .with_detail("HeadersNotSigned", unsigned.join(", ")))
}

/// What `x-amz-content-sha256` asks of the body.
fn payload_check(
    req: &http::request::Parts,
    content_sha: &str,
    signing: impl FnOnce() -> ChunkSigning,
) -> Result<Payload> {
    let decoded_length = || {
        req.headers
            .get("x-amz-decoded-content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok())
    };
    Ok(match content_sha {
        "UNSIGNED-PAYLOAD" => Payload::Unsigned,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" | "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => {
            Payload::Chunked {
                signing: Some(signing()),
                decoded_length: decoded_length(),
            }
        }
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Payload::Chunked {
            signing: None,
            decoded_length: decoded_length(),
        },
        v if v.starts_with("STREAMING-AWS4-ECDSA") => {
            return Err(Error::msg(
                Code::NotImplemented,
                "SigV4a (ECDSA) streaming signatures are not supported.",
            ));
        }
        v => {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(v, &mut hash)
                .map_err(|_| Error::msg(Code::InvalidArgument, "Invalid x-amz-content-sha256"))?;
            Payload::Sha256(hash)
        }
    })
}

/// SigV4's timestamp form, `YYYYMMDDTHHMMSSZ`.
const AMZ_DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");

/// The request's date for a header-signed request: `x-amz-date`, or else the HTTP `Date`
/// header, which SigV4 also accepts (libraries add one); an empty one is absent.
fn request_date(amz_date: Option<&str>, date: Option<&str>) -> Option<String> {
    if let Some(d) = amz_date.filter(|d| !d.is_empty()) {
        return Some(d.to_owned());
    }
    let t = httpdate::parse_http_date(date.filter(|d| !d.is_empty())?.trim()).ok()?;
    time::OffsetDateTime::from(t).format(AMZ_DATE).ok()
}

pub(crate) fn parse_amz_date(amz_date: &str) -> Result<time::OffsetDateTime> {
    Ok(time::PrimitiveDateTime::parse(amz_date, AMZ_DATE)
        .map_err(|_| Error::msg(Code::AccessDenied, "Invalid x-amz-date"))?
        .assume_utc())
}

fn check_skew(t: time::OffsetDateTime, params: &AuthParams) -> Result<()> {
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
        Payload::Chunked {
            signing,
            decoded_length,
        } => chunked::decode(raw, signing, decoded_length, trailers.clone()),
    };
    (stream, trailers)
}

/// Holds back the last piece of `body` until `body` has ended cleanly, and ends for good after
/// an error. A relay that forwards [`verified_body`]'s output through this never lets its peer
/// see a whole body whose end-of-body checks (payload hash, final chunk signature, trailers)
/// failed: the peer sees the body break off short of its length, and commits nothing.
pub fn held_until_checked(body: ByteStream) -> ByteStream {
    use futures::StreamExt;
    let state = (Some(body), None::<bytes::Bytes>);
    futures::stream::unfold(state, |(body, held)| async move {
        let mut body = body?;
        let mut held = held;
        loop {
            match body.next().await {
                Some(Ok(piece)) if piece.is_empty() => continue,
                Some(Ok(piece)) => match held.replace(piece) {
                    Some(previous) => return Some((Ok(previous), (Some(body), held))),
                    None => continue,
                },
                Some(Err(e)) => return Some((Err(e), (None, None))),
                None => return held.map(|last| (Ok(last), (None, None))),
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::request_date;

    #[test]
    fn request_date_prefers_x_amz_date_then_the_date_header() {
        let date = Some("Fri, 24 May 2013 00:00:00 GMT");
        assert_eq!(
            request_date(Some("20130524T000000Z"), Some("garbage")).as_deref(),
            Some("20130524T000000Z")
        );
        assert_eq!(
            request_date(None, date).as_deref(),
            Some("20130524T000000Z")
        );
        assert_eq!(
            request_date(Some(""), date).as_deref(),
            Some("20130524T000000Z")
        );
        for none in [None, Some(""), Some("yesterday")] {
            assert_eq!(request_date(None, none), None, "{none:?}");
        }
    }
}
