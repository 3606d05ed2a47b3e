//! PutBucketCors, GetBucketCors, DeleteBucketCors: the bucket's CORS rules, validated as S3
//! does ([`crate::s3::cors`]) and kept in its settings as the document GetBucketCors answers.

use http::StatusCode;

use super::delete::check_body_integrity;
use super::policy::update;
use crate::error::{Code, Error, Result};
use crate::s3::cors::CorsConfiguration;
use crate::s3::{Req, Response, S3, empty_response, xml, xml_response};

/// S3 takes CORS documents of up to 64 KB.
const MAX_CORS_BYTES: usize = 64 << 10;

pub async fn get_cors(s3: &S3, req: Req) -> Result<Response> {
    let bucket = s3.engine.bucket(req.bucket()).await?;
    let cors = bucket
        .settings
        .cors
        .ok_or_else(|| Error::new(Code::NoSuchCORSConfiguration))?;
    Ok(xml_response(cors))
}

pub async fn put_cors(s3: &S3, mut req: Req) -> Result<Response> {
    let body = xml::read_small_body(req.take_body(), MAX_CORS_BYTES).await?;
    check_body_integrity(&req, &body)?;
    let cors = CorsConfiguration::parse(&body)?.to_xml();
    update(s3, &req, |s| s.cors = Some(cors)).await?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn delete_cors(s3: &S3, req: Req) -> Result<Response> {
    update(s3, &req, |s| s.cors = None).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use crate::engine::BucketSettings;

    #[test]
    fn bucket_rows_written_before_cors_still_read() {
        let old = r#"{"policy":null,"public_read_acl":true,"website":null}"#;
        let settings: BucketSettings = serde_json::from_str(old).unwrap();
        assert_eq!(settings.cors, None);
        assert!(settings.public_read_acl);
    }
}
