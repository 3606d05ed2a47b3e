//! SigV4 presigned URLs: the signature and its validity window travel in the query string
//! (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
//! `X-Amz-SignedHeaders`, `X-Amz-Signature`). The signature itself is checked like a header
//! signature, by [`super::verify_v4`].

use std::time::Duration;

use percent_encoding::percent_decode_str;

use super::{AuthParams, SignedV4, parse_amz_date};
use crate::error::{Code, Error, Result};

/// S3 refuses presigned URLs valid for longer than seven days.
pub const MAX_EXPIRES: Duration = Duration::from_secs(7 * 24 * 3600);

/// Reads the presigned fields and checks the validity window against `params.now`.
pub(super) fn parse(query: &str, params: &AuthParams) -> Result<SignedV4> {
    let field = |name: &str| {
        query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode_str(v).decode_utf8_lossy().into_owned())
            .ok_or_else(|| {
                query_error(format!(
                    "Query-string authentication requires the {name} parameter"
                ))
            })
    };
    if field("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256" {
        return Err(query_error(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
        ));
    }
    let amz_date = field("X-Amz-Date")?;
    let expires: i64 = field("X-Amz-Expires")?
        .parse()
        .map_err(|_| query_error("X-Amz-Expires should be a number"))?;
    // boto3 signs a negative ExpiresIn without complaint: a URL that expired before it was made.
    let Ok(expires) = u64::try_from(expires) else {
        return Err(Error::msg(Code::AccessDenied, "Request has expired"));
    };
    if expires > MAX_EXPIRES.as_secs() {
        return Err(query_error(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ));
    }
    let signed = SignedV4::new(
        &field("X-Amz-Credential")?,
        &field("X-Amz-SignedHeaders")?,
        &field("X-Amz-Signature")?,
        amz_date,
        true,
    )
    .ok_or_else(|| query_error("Error parsing the X-Amz-Credential parameter"))?;

    let signed_at = parse_amz_date(&signed.amz_date)?;
    let now = time::OffsetDateTime::from(params.now);
    if signed_at - now > params.max_skew {
        return Err(Error::msg(Code::AccessDenied, "Request is not valid yet"));
    }
    if now > signed_at + Duration::from_secs(expires) {
        return Err(Error::msg(Code::AccessDenied, "Request has expired"));
    }
    Ok(signed)
}

fn query_error(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::msg(Code::AuthorizationQueryParametersError, message)
}
