//! SigV2 presigned query strings (`AWSAccessKeyId`, `Expires`, `Signature`): what aws-cli v1's
//! `presign` still emits by default. Only the query form is accepted; SigV2 Authorization
//! headers are refused like S3 does in regions launched after 2014.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::percent_decode_str;
use subtle::ConstantTimeEq;

use super::{AuthParams, Authenticated, Identity, Payload};
use crate::error::{Code, Error, Result};

/// Query parameters that are part of the SigV2 canonical resource.
const SUBRESOURCES: &[&str] = &[
    "acl",
    "cors",
    "delete",
    "location",
    "partNumber",
    "policy",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "tagging",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

pub(super) fn verify_presigned(
    req: &http::request::Parts,
    params: &AuthParams,
) -> Result<Authenticated> {
    let query: Vec<(String, String)> = req
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect();
    let field = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| {
                Error::msg(
                    Code::AccessDenied,
                    format!("Query-string authentication requires the {name} parameter"),
                )
            })
    };
    let access_key = field("AWSAccessKeyId")?;
    let signature = field("Signature")?;
    let expires: u64 = field("Expires")?
        .parse()
        .map_err(|_| Error::msg(Code::AccessDenied, "Invalid Expires parameter"))?;
    let secret = params
        .keyring
        .secret(access_key)
        .ok_or_else(|| Error::new(Code::InvalidAccessKeyId))?;
    let now = params
        .now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if now > expires {
        return Err(Error::msg(Code::AccessDenied, "Request has expired"));
    }

    let header = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let mut amz: Vec<(String, String)> = req
        .headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-amz-"))
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).trim().to_owned(),
            )
        })
        .collect();
    amz.sort();
    let amz_headers: String = amz.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let mut subresources: Vec<String> = query
        .iter()
        .filter(|(k, _)| SUBRESOURCES.contains(&k.as_str()))
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    subresources.sort();
    let subresources = if subresources.is_empty() {
        String::new()
    } else {
        format!("?{}", subresources.join("&"))
    };

    let matches = |resource: &str| {
        let string_to_sign = format!(
            "{}\n{}\n{}\n{expires}\n{amz_headers}{resource}{subresources}",
            req.method,
            header("content-md5"),
            header("content-type"),
        );
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.expose().as_bytes())
            .expect("HMAC takes any key length");
        mac.update(string_to_sign.as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
    };
    // The canonical resource starts with the bucket; with virtual-hosted addressing the bucket
    // is in the Host header, not the path.
    let path = req.uri.path();
    let hosted = format!("/{}{path}", params.bucket);
    if !matches(path) && (params.bucket.is_empty() || !matches(&hosted)) {
        return Err(Error::new(Code::SignatureDoesNotMatch));
    }
    Ok(Authenticated {
        identity: Identity::Key(access_key.to_owned()),
        payload: Payload::Unsigned,
    })
}
