//! Bucket policy (only the anonymous public-read shapes static sites use) and the bucket
//! website document (stored here, served by the edge).

use http::StatusCode;
use serde_json::Value;

use crate::engine::BucketSettings;
use crate::error::{Code, Error, Result};
use crate::s3::{Req, Response, S3, empty_response, xml, xml_response};

const MAX_POLICY_BYTES: usize = 20 << 10;
const MAX_WEBSITE_BYTES: usize = 128 << 10;

/// What anonymous clients may do in a bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublicAccess {
    /// GetObject / HeadObject.
    pub read: bool,
    /// ListObjects(V2).
    pub list: bool,
}

/// Derives anonymous access from the canned ACL and the stored policy (validated on PUT).
pub fn public_access(settings: &BucketSettings) -> PublicAccess {
    let mut access = PublicAccess {
        read: settings.public_read_acl,
        list: false,
    };
    let Some(policy) = settings
        .policy
        .as_deref()
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
    else {
        return access;
    };
    for statement in statements(&policy) {
        for action in strings(&statement["Action"]) {
            match action {
                "s3:GetObject" => access.read = true,
                "s3:ListBucket" => access.list = true,
                _ => {}
            }
        }
    }
    access
}

fn statements(policy: &Value) -> Vec<&Value> {
    match &policy["Statement"] {
        Value::Array(items) => items.iter().collect(),
        obj @ Value::Object(_) => vec![obj],
        _ => vec![],
    }
}

/// A JSON string or array of strings.
fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// Accepts policies made only of `Allow` statements granting anonymous `s3:GetObject` on
/// `arn:aws:s3:::bucket/...` and/or `s3:ListBucket` on the bucket. Richer policies are
/// NotImplemented rather than silently half-enforced.
pub fn validate_policy(bucket: &str, text: &str) -> Result<()> {
    let policy: Value =
        serde_json::from_str(text).map_err(|_| Error::new(Code::MalformedPolicy))?;
    let statements = statements(&policy);
    if !policy.is_object() || statements.is_empty() {
        return Err(Error::msg(
            Code::MalformedPolicy,
            "Missing required field Statement",
        ));
    }
    let unsupported = |what: &str| {
        Error::msg(
            Code::NotImplemented,
            format!(
                "Only anonymous s3:GetObject / s3:ListBucket Allow statements are supported ({what})."
            ),
        )
    };
    let object_arn = format!("arn:aws:s3:::{bucket}/");
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    for s in statements {
        if s["Effect"] != "Allow" {
            return Err(unsupported("Effect"));
        }
        let principal = &s["Principal"];
        let anonymous = principal == "*" || strings(&principal["AWS"]) == ["*"];
        if !anonymous
            || !s["Condition"].is_null()
            || !s["NotAction"].is_null()
            || !s["NotResource"].is_null()
        {
            return Err(unsupported("Principal/Condition"));
        }
        let actions = strings(&s["Action"]);
        let resources = strings(&s["Resource"]);
        if actions.is_empty() || resources.is_empty() {
            return Err(Error::msg(
                Code::MalformedPolicy,
                "Statement needs Action and Resource",
            ));
        }
        for action in actions {
            let fits = |r: &str| match action {
                "s3:GetObject" => r.starts_with(&object_arn),
                "s3:ListBucket" => r == bucket_arn,
                _ => false,
            };
            if !matches!(action, "s3:GetObject" | "s3:ListBucket") {
                return Err(unsupported(action));
            }
            if !resources.iter().all(|r| fits(r)) {
                return Err(Error::msg(
                    Code::MalformedPolicy,
                    "Policy has invalid resource",
                ));
            }
        }
    }
    Ok(())
}

pub async fn get_policy(s3: &S3, req: Req) -> Result<Response> {
    let bucket = s3.engine.bucket(req.bucket()).await?;
    let policy = bucket
        .settings
        .policy
        .ok_or_else(|| Error::new(Code::NoSuchBucketPolicy))?;
    Ok(http::Response::builder()
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONTENT_LENGTH, policy.len())
        .body(axum::body::Body::from(policy))
        .expect("valid response"))
}

pub async fn put_policy(s3: &S3, mut req: Req) -> Result<Response> {
    let body = xml::read_small_body(req.take_body(), MAX_POLICY_BYTES).await?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| Error::new(Code::MalformedPolicy))?;
    validate_policy(req.bucket(), &text)?;
    update(s3, &req, |s| s.policy = Some(text)).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn delete_policy(s3: &S3, req: Req) -> Result<Response> {
    update(s3, &req, |s| s.policy = None).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn get_website(s3: &S3, req: Req) -> Result<Response> {
    let bucket = s3.engine.bucket(req.bucket()).await?;
    let website = bucket
        .settings
        .website
        .ok_or_else(|| Error::new(Code::NoSuchWebsiteConfiguration))?;
    Ok(xml_response(website))
}

pub async fn put_website(s3: &S3, mut req: Req) -> Result<Response> {
    let body = xml::read_small_body(req.take_body(), MAX_WEBSITE_BYTES).await?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| Error::new(Code::MalformedXML))?;
    check_well_formed(&text, "WebsiteConfiguration")?;
    update(s3, &req, |s| s.website = Some(text)).await?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn delete_website(s3: &S3, req: Req) -> Result<Response> {
    update(s3, &req, |s| s.website = None).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

async fn update(s3: &S3, req: &Req, change: impl FnOnce(&mut BucketSettings)) -> Result<()> {
    let mut bucket = s3.engine.bucket(req.bucket()).await?;
    change(&mut bucket.settings);
    s3.engine
        .set_bucket_settings(req.bucket(), bucket.settings)
        .await
}

/// The document parses as XML and its root element is `root`.
pub fn check_well_formed(text: &str, root: &str) -> Result<()> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut saw_root = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if !saw_root => {
                if e.local_name().as_ref() != root.as_bytes() {
                    return Err(Error::new(Code::MalformedXML));
                }
                saw_root = true;
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(_) => return Err(Error::new(Code::MalformedXML)),
        }
    }
    if saw_root {
        Ok(())
    } else {
        Err(Error::new(Code::MalformedXML))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC_READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::site/*"]}]}"#;

    #[test]
    fn standard_public_read_policy() {
        validate_policy("site", PUBLIC_READ).unwrap();
        let settings = BucketSettings {
            policy: Some(PUBLIC_READ.into()),
            ..Default::default()
        };
        assert_eq!(
            public_access(&settings),
            PublicAccess {
                read: true,
                list: false
            }
        );
        assert_eq!(
            public_access(&BucketSettings::default()),
            PublicAccess::default()
        );
    }

    #[test]
    fn other_policies_are_refused() {
        assert_eq!(
            validate_policy("site", "nope").unwrap_err().code,
            Code::MalformedPolicy
        );
        let other_bucket = PUBLIC_READ.replace("site/*", "other/*");
        assert_eq!(
            validate_policy("site", &other_bucket).unwrap_err().code,
            Code::MalformedPolicy
        );
        let put = PUBLIC_READ.replace("s3:GetObject", "s3:PutObject");
        assert_eq!(
            validate_policy("site", &put).unwrap_err().code,
            Code::NotImplemented
        );
        let deny = PUBLIC_READ.replace("Allow", "Deny");
        assert_eq!(
            validate_policy("site", &deny).unwrap_err().code,
            Code::NotImplemented
        );
    }

    #[test]
    fn website_xml_must_be_well_formed() {
        check_well_formed("<WebsiteConfiguration xmlns=\"x\"><IndexDocument><Suffix>index.html</Suffix></IndexDocument></WebsiteConfiguration>", "WebsiteConfiguration").unwrap();
        assert!(
            check_well_formed(
                "<WebsiteConfiguration><a></WebsiteConfiguration>",
                "WebsiteConfiguration"
            )
            .is_err()
        );
        assert!(check_well_formed("<Other/>", "WebsiteConfiguration").is_err());
    }
}
