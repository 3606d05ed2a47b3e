//! What travels to the origin, and the edge's own SigV4 signature on it.
//!
//! The edge speaks for itself toward the origin: the client's credentials and per-hop headers
//! stay behind ([`forwardable`]), and each request is signed anew with the edge's key
//! ([`Signer`], on `aws-sigv4` with S3's rules: the path signed exactly as sent, neither
//! re-encoded nor normalised; `UNSIGNED-PAYLOAD`, so bodies stream without being hashed first).

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, HeaderName};
use outpost_store::s3::headers;

/// Headers never forwarded: per-hop ones (RFC 9110 §7.6.1) and everything about the client's
/// authentication, which the edge's own signature replaces. `content-length` describes the body
/// the edge sends, which the caller states separately (it may have de-chunked it).
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    // hyper's client does not speak 100-continue; the body is sent straight away.
    "expect",
    "host",
    "content-length",
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
];

/// The client's headers that travel to the origin: all but [`NOT_FORWARDED`], `proxy-*`, and
/// any header the client's `Connection` header names as per-hop.
pub fn forwardable(headers: &HeaderMap) -> HeaderMap {
    let per_hop: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name_str = name.as_str();
        let dropped = NOT_FORWARDED.contains(&name_str)
            || name_str.starts_with("proxy-")
            || per_hop.iter().any(|hop| hop == name_str);
        if !dropped {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The edge's SigV4 identity toward its origins (the secret is kept in `Identity`, whose Debug
/// output redacts it).
pub struct Signer {
    identity: Identity,
    region: String,
}

impl Signer {
    pub fn new(access_key_id: &str, secret_access_key: &str, region: &str) -> Signer {
        let credentials = aws_credential_types::Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "outpost-edge",
        );
        Signer {
            identity: credentials.into(),
            region: region.to_owned(),
        }
    }

    /// Adds `authorization`, `x-amz-date` (from `now`) and `x-amz-content-sha256: payload`
    /// (`UNSIGNED-PAYLOAD` or `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: bodies are never hashed
    /// here) to `headers`, which must already hold everything sent, `host` included.
    /// `path_and_query` is signed as it goes on the wire.
    ///
    /// Headers the two sides could canonicalise differently travel unsigned: values that are
    /// not visible ASCII, and values with tabs (aws-sigv4 trims spaces only, the store all
    /// whitespace). The store refuses unsigned `x-amz-*` headers, so those are first made
    /// signable ([`signable_amz_values`]). The store verifies exactly the headers the
    /// signature lists.
    pub fn sign(
        &self,
        method: &http::Method,
        path_and_query: &str,
        headers: &mut HeaderMap,
        payload: &str,
        now: SystemTime,
    ) -> Result<(), String> {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| format!("signing parameters: {e}"))?
            .into();
        let host = headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .ok_or("the request to sign has no Host header")?;
        let uri = signable_uri(host, path_and_query);
        signable_amz_values(headers)?;
        let signed_headers = headers.iter().filter_map(|(name, value)| {
            let value = value.to_str().ok().filter(|_| is_signable(value))?;
            Some((name.as_str(), value))
        });
        let signable = SignableRequest::new(
            method.as_str(),
            &uri,
            signed_headers,
            SignableBody::Precomputed(payload.to_owned()),
        )
        .map_err(|e| format!("unsignable request: {e}"))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| format!("signing failed: {e}"))?
            .into_parts();
        let (added, _query) = instructions.into_parts();
        for header in added {
            let name = HeaderName::from_static(header.name());
            let mut value = http::HeaderValue::from_str(header.value())
                .map_err(|e| format!("signature header {}: {e}", header.name()))?;
            value.set_sensitive(header.sensitive());
            headers.insert(name, value);
        }
        Ok(())
    }
}

/// Can aws-sigv4 sign this value exactly as the store canonicalises it?
fn is_signable(value: &http::HeaderValue) -> bool {
    value.to_str().is_ok_and(|v| !v.contains('\t'))
}

/// Rewrites user metadata whose value aws-sigv4 cannot sign (UTF-8, tabs) as an RFC 2047
/// encoded word, which the store decodes back to the same value; any other `x-amz-*` header
/// with such a value cannot be passed on (the store would refuse it unsigned).
fn signable_amz_values(headers: &mut HeaderMap) -> Result<(), String> {
    let unsignable: Vec<HeaderName> = headers
        .iter()
        .filter(|(name, value)| name.as_str().starts_with("x-amz-") && !is_signable(value))
        .map(|(name, _)| name.clone())
        .collect();
    for name in unsignable {
        let metadata = name.as_str().starts_with("x-amz-meta-");
        let mut rewritten = Vec::new();
        for value in headers.get_all(&name) {
            let text = std::str::from_utf8(value.as_bytes())
                .ok()
                .filter(|_| metadata);
            let encoded =
                text.and_then(|t| http::HeaderValue::from_str(&headers::encoded_word(t)).ok());
            rewritten.push(encoded.ok_or_else(|| format!("the {name} header cannot be signed"))?);
        }
        headers.remove(&name);
        for value in rewritten {
            headers.append(name.clone(), value);
        }
    }
    Ok(())
}

/// The URI handed to aws-sigv4, which reads the query as a form (`+` is a space) while S3 and
/// the store read a `+` literally: written as `%2B` here, both sides sign a plus. The wire
/// keeps the request's own bytes.
fn signable_uri(host: &str, path_and_query: &str) -> String {
    match path_and_query.split_once('?') {
        Some((path, query)) if query.contains('+') => {
            format!("http://{host}{path}?{}", query.replace('+', "%2B"))
        }
        _ => format!("http://{host}{path_and_query}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_store::s3::auth::{self, AuthParams, Credentials, Identity, Keyring, SecretKey};
    use std::time::Duration;

    const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
    const AKID: &str = "AKIDEDGE";
    const SECRET: &str = "edge/secret+key";

    fn keyring() -> Keyring {
        Keyring::new([Credentials {
            access_key_id: AKID.into(),
            secret: SecretKey::new(SECRET),
        }])
    }

    fn verify(parts: &http::request::Parts, bucket: &str, now: SystemTime) -> Result<(), String> {
        auth::authenticate(
            parts,
            &AuthParams {
                keyring: &keyring(),
                region: "us-east-1",
                bucket,
                now,
                max_skew: Duration::from_secs(900),
            },
        )
        .map(|a| assert_eq!(a.identity, Identity::Key(AKID.into())))
        .map_err(|e| format!("{e:?}"))
    }

    /// A request as the origin receives it: `path_and_query` on the wire, `headers` signed.
    fn signed(
        method: &str,
        path_and_query: &str,
        extra: &[(&'static str, &str)],
    ) -> http::request::Parts {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, "127.0.0.1:9000".parse().unwrap());
        for (k, v) in extra {
            headers.append(*k, v.parse().unwrap());
        }
        let method: http::Method = method.parse().unwrap();
        Signer::new(AKID, SECRET, "us-east-1")
            .sign(
                &method,
                path_and_query,
                &mut headers,
                "UNSIGNED-PAYLOAD",
                SystemTime::now(),
            )
            .unwrap();
        let mut request = http::Request::builder()
            .method(method)
            .uri(path_and_query)
            .body(())
            .unwrap();
        *request.headers_mut() = headers;
        request.into_parts().0
    }

    /// What the edge signs, the store's own verifier accepts: awkward keys and queries too.
    #[test]
    fn the_store_accepts_the_edge_signature() {
        for path in [
            "/b/plain.txt",
            "/b",
            "/b/",
            // Spaces, '+', unicode (ä, 日本), '%2E%2E' that must not be normalised away.
            "/b/a%20b/%2B%C3%A4%2E%2E/%E6%97%A5%E6%9C%AC?partNumber=1&uploadId=x%2By",
            "/b/dir/%2E%2E/key?list-type=2&prefix=a%2Fb%20c&delimiter=%2F",
            "/b/a+b/~tilde_(x)!*'",
            "/b/k?uploads",
            "/b/k?prefix=a+b&max-keys=3",
            "/b/k?versionId=&x-id=GetObject&%E6%97%A5=%E6%9C%AC",
        ] {
            let parts = signed(
                "GET",
                path,
                &[
                    ("range", "bytes=0-9"),
                    ("if-none-match", "\"abc\""),
                    ("x-amz-meta-a", "  spaced   out  "),
                    ("x-amz-meta-multi", "one"),
                    ("x-amz-meta-multi", "two"),
                    ("x-amz-meta-tab", "a\tb"),
                    ("content-type", "text/plain; charset=utf-8"),
                ],
            );
            assert_eq!(parts.headers["x-amz-content-sha256"], UNSIGNED_PAYLOAD);
            verify(&parts, "b", SystemTime::now()).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
        for method in ["PUT", "HEAD", "DELETE", "POST"] {
            let parts = signed(
                method,
                "/b/k%20x?uploadId=1&partNumber=2",
                &[("content-length", "5")],
            );
            verify(&parts, "b", SystemTime::now()).unwrap_or_else(|e| panic!("{method}: {e}"));
        }
    }

    /// Metadata aws-sigv4 cannot sign as the store canonicalises it travels as RFC 2047
    /// encoded words, signed, and means the same value to the store.
    #[test]
    fn unsignable_metadata_is_encoded_and_signed() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, "127.0.0.1:9000".parse().unwrap());
        let utf8 = http::HeaderValue::from_bytes("café crème".as_bytes()).unwrap();
        headers.insert("x-amz-meta-utf8", utf8);
        headers.insert("x-amz-meta-tab", "a\tb".parse().unwrap());
        Signer::new(AKID, SECRET, "us-east-1")
            .sign(
                &http::Method::PUT,
                "/b/k",
                &mut headers,
                "UNSIGNED-PAYLOAD",
                SystemTime::now(),
            )
            .unwrap();
        assert_eq!(
            headers["x-amz-meta-utf8"],
            headers::encoded_word("café crème").as_str()
        );
        assert_eq!(
            headers["x-amz-meta-tab"],
            headers::encoded_word("a\tb").as_str()
        );
        let mut request = http::Request::builder()
            .method("PUT")
            .uri("/b/k")
            .body(())
            .unwrap();
        *request.headers_mut() = headers.clone();
        verify(&request.into_parts().0, "b", SystemTime::now()).unwrap();
        // Other x-amz-* headers with such values are not passed on unsigned.
        headers.insert("x-amz-tagging", "a\tb".parse().unwrap());
        let refused = Signer::new(AKID, SECRET, "us-east-1").sign(
            &http::Method::PUT,
            "/b/k",
            &mut headers,
            "UNSIGNED-PAYLOAD",
            SystemTime::now(),
        );
        assert!(refused.is_err());
    }

    #[test]
    fn the_signature_binds_path_and_signed_headers() {
        let parts = signed("GET", "/b/key", &[("range", "bytes=0-9")]);
        let mut other = parts.clone();
        other.uri = "/b/kez".parse().unwrap();
        assert!(
            verify(&other, "b", SystemTime::now()).is_err(),
            "another key"
        );
        let mut other = parts.clone();
        other.headers.insert("range", "bytes=0-99".parse().unwrap());
        assert!(
            verify(&other, "b", SystemTime::now()).is_err(),
            "another range"
        );
        let later = SystemTime::now() + Duration::from_secs(3600);
        assert!(verify(&parts, "b", later).is_err(), "x-amz-date is now");
    }

    #[test]
    fn client_credentials_and_per_hop_headers_stay_behind() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "AWS4-HMAC-SHA256 client"),
            ("connection", "keep-alive, x-private-hop"),
            ("keep-alive", "timeout=5"),
            ("x-private-hop", "1"),
            ("proxy-authorization", "Basic x"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("host", "edge.example"),
            ("content-length", "12"),
            ("expect", "100-continue"),
            ("x-amz-date", "20250101T000000Z"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("x-amz-security-token", "token"),
            ("content-type", "text/plain"),
            ("range", "bytes=0-1"),
            ("if-none-match", "\"e\""),
            ("x-amz-meta-a", "1"),
            ("x-amz-checksum-crc32", "AAAAAA=="),
        ] {
            h.append(k, v.parse().unwrap());
        }
        h.append("x-amz-meta-a", "2".parse().unwrap());
        let out = forwardable(&h);
        let mut names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "content-type",
                "if-none-match",
                "range",
                "x-amz-checksum-crc32",
                "x-amz-meta-a"
            ]
        );
        assert_eq!(
            out.get_all("x-amz-meta-a").iter().count(),
            2,
            "repeated values kept"
        );
    }
}
