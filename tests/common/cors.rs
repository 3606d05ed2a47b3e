//! CORS helpers shared by the store and edge suites: the rules most tests set, unsigned
//! preflights, and assertions on the `Access-Control-*` headers.

use aws_sdk_s3::types::{CorsConfiguration, CorsRule};

use super::{RawRequest, TestStore, raw};

pub const APP: &str = "https://app.example.test";
pub const EVIL: &str = "https://evil.example.test";
pub const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/// The rules most tests use: `APP` may GET, HEAD and PUT with any header and read the ETag;
/// anyone may HEAD.
pub fn app_rules() -> CorsConfiguration {
    CorsConfiguration::builder()
        .cors_rules(
            CorsRule::builder()
                .id("app")
                .allowed_origins(APP)
                .allowed_methods("GET")
                .allowed_methods("HEAD")
                .allowed_methods("PUT")
                .allowed_headers("*")
                .expose_headers("ETag")
                .max_age_seconds(600)
                .build()
                .unwrap(),
        )
        .cors_rules(
            CorsRule::builder()
                .allowed_origins("*")
                .allowed_methods("HEAD")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

pub async fn put_rules(s3: &aws_sdk_s3::Client, bucket: &str, rules: CorsConfiguration) {
    s3.put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(rules)
        .send()
        .await
        .expect("PutBucketCors");
}

/// An unsigned preflight of `path` from `origin` for `method` (with `headers` asked, if any).
pub async fn preflight(
    server: &TestStore,
    path: &str,
    origin: Option<&str>,
    method: &str,
    headers: &str,
) -> raw::RawResponse {
    let mut req = RawRequest::new("OPTIONS", path);
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    if !method.is_empty() {
        req = req.header("access-control-request-method", method);
    }
    if !headers.is_empty() {
        req = req.header("access-control-request-headers", headers);
    }
    req.send(server).await
}

/// Asserts `r` carries what the `app` rule gives `APP`.
#[track_caller]
pub fn assert_app_headers(r: &raw::RawResponse) {
    assert_eq!(r.header("access-control-allow-origin"), Some(APP), "{r:?}");
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, HEAD, PUT")
    );
    assert_eq!(r.header("access-control-expose-headers"), Some("ETag"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert_eq!(r.header("vary"), Some(VARY));
}

/// Asserts `r` lets no script from its Origin read it.
#[track_caller]
pub fn assert_no_cors(r: &raw::RawResponse) {
    let cors: Vec<_> = r
        .headers
        .iter()
        .filter(|(k, _)| k.starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{cors:?} in {r:?}");
}
