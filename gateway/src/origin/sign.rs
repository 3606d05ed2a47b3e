//! Requests toward the origin: which client headers travel, and the edge's SigV4 signature
//! (`aws-sigv4` with S3's rules: the path encoded once, never normalised; UNSIGNED-PAYLOAD,
//! so bodies stream without being hashed first).

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign as sigv4_sign,
};
use aws_sigv4::sign::v4;
use axum::body::Body;

use super::{OriginError, OriginSettings};

/// Per-hop and authentication headers: the edge speaks for itself toward the origin.
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "host",
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
];

pub fn forwardable(headers: &http::HeaderMap) -> http::HeaderMap {
    let mut out = headers.clone();
    for name in NOT_FORWARDED {
        out.remove(*name);
    }
    out
}

/// Adds `Authorization`, `x-amz-date` and `x-amz-content-sha256: UNSIGNED-PAYLOAD`.
pub fn sign(
    request: &mut http::Request<Body>,
    uri: &str,
    settings: &OriginSettings,
) -> Result<(), OriginError> {
    let mut signing = SigningSettings::default();
    signing.percent_encoding_mode = PercentEncodingMode::Single;
    signing.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    signing.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let identity = aws_credential_types::Credentials::new(
        &settings.access_key_id,
        &settings.secret_access_key,
        None,
        None,
        "outpost-edge",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&settings.region)
        .name("s3")
        .time(SystemTime::now())
        .settings(signing)
        .build()
        .map_err(|e| OriginError::Invalid(e.to_string()))?
        .into();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers.into_iter(),
        SignableBody::UnsignedPayload,
    )
    .map_err(|e| OriginError::Invalid(e.to_string()))?;
    let (instructions, _) = sigv4_sign(signable, &params)
        .map_err(|e| OriginError::Invalid(e.to_string()))?
        .into_parts();
    let signed: Vec<(String, String)> = instructions
        .headers()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for (name, value) in signed {
        let name =
            http::HeaderName::try_from(name).map_err(|e| OriginError::Invalid(e.to_string()))?;
        let value =
            http::HeaderValue::try_from(value).map_err(|e| OriginError::Invalid(e.to_string()))?;
        request.headers_mut().insert(name, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_store::s3::auth::{self, AuthParams, Credentials, Identity, Keyring, SecretKey};

    fn settings() -> OriginSettings {
        OriginSettings {
            timeout: std::time::Duration::from_secs(1),
            retry_after: std::time::Duration::from_secs(1),
            access_key_id: "AKIDEDGE".into(),
            secret_access_key: "edge/secret+key".into(),
            region: "us-east-1".into(),
        }
    }

    /// What the edge signs, the store's own verifier accepts, for awkward keys too.
    #[test]
    fn the_store_accepts_the_edge_signature() {
        let keyring = Keyring::new([Credentials {
            access_key_id: "AKIDEDGE".into(),
            secret: SecretKey::new("edge/secret+key"),
        }]);
        for path in [
            "/b/plain.txt",
            "/b/a%20b/%2B%C3%A4%2E%2E/x?partNumber=1",
            "/b/dir/%2E%2E/key?list-type=2&prefix=a%2Fb",
        ] {
            let uri = format!("http://127.0.0.1:9000{path}");
            let mut request = http::Request::builder()
                .method("GET")
                .uri(&uri)
                .header("host", "127.0.0.1:9000")
                .header("range", "bytes=0-9")
                .body(Body::empty())
                .unwrap();
            sign(&mut request, &uri, &settings()).unwrap();
            assert_eq!(
                request.headers()["x-amz-content-sha256"],
                "UNSIGNED-PAYLOAD"
            );
            let (parts, _) = request.into_parts();
            let verified = auth::authenticate(
                &parts,
                &AuthParams {
                    keyring: &keyring,
                    region: "us-east-1",
                    bucket: "b",
                    now: SystemTime::now(),
                    max_skew: std::time::Duration::from_secs(900),
                },
            )
            .unwrap_or_else(|e| panic!("{path}: {e:?}"));
            assert_eq!(verified.identity, Identity::Key("AKIDEDGE".into()));
        }
    }

    #[test]
    fn client_credentials_and_hop_headers_stay_behind() {
        let mut h = http::HeaderMap::new();
        for (k, v) in [
            ("authorization", "AWS4-HMAC-SHA256 client"),
            ("connection", "keep-alive"),
            ("x-amz-date", "20250101T000000Z"),
            ("content-type", "text/plain"),
            ("x-amz-meta-a", "1"),
        ] {
            h.insert(k, v.parse().unwrap());
        }
        let out = forwardable(&h);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), 2);
        assert!(out.contains_key("content-type") && out.contains_key("x-amz-meta-a"));
    }
}
