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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublicAccess {
    /// GetObject / HeadObject of every object (the `public-read` canned ACL).
    read_all: bool,
    /// GetObject / HeadObject of the objects whose ARN matches one of these `Resource`
    /// patterns (a policy's `s3:GetObject` statements).
    read: Vec<String>,
    /// ListObjects(V2).
    pub list: bool,
}

impl PublicAccess {
    /// May an anonymous client read `key` of `bucket`?
    pub fn can_read(&self, bucket: &str, key: &str) -> bool {
        self.read_all || {
            let arn = format!("arn:aws:s3:::{bucket}/{key}");
            self.read.iter().any(|pattern| arn_matches(pattern, &arn))
        }
    }
}

/// Derives anonymous access from the canned ACL and the stored policy (validated on PUT, so
/// every statement is an anonymous Allow of the shapes [`validate_policy`] accepts).
pub fn public_access(settings: &BucketSettings) -> PublicAccess {
    let mut access = PublicAccess {
        read_all: settings.public_read_acl,
        ..PublicAccess::default()
    };
    let Some(policy) = settings
        .policy
        .as_deref()
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
    else {
        return access;
    };
    for statement in statements(&policy) {
        let resources = strings(&statement["Resource"]);
        for action in strings(&statement["Action"]) {
            match action {
                "s3:GetObject" => access.read.extend(resources.iter().map(|r| r.to_string())),
                "s3:ListBucket" => access.list = true,
                _ => {}
            }
        }
    }
    access
}

/// IAM's ARN matching: `*` matches any run of characters (`/` included), `?` any one
/// character, everything else itself, case-sensitively, over the whole ARN.
pub fn arn_matches(pattern: &str, arn: &str) -> bool {
    let (p, a): (Vec<char>, Vec<char>) = (pattern.chars().collect(), arn.chars().collect());
    // Greedy matching with one backtrack point: the last `*` seen (linear for our sizes).
    let (mut pi, mut ai) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ai < a.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ai));
                pi += 1;
            }
            Some(&c) if c == '?' || c == a[ai] => {
                pi += 1;
                ai += 1;
            }
            _ => match star {
                Some((sp, sa)) => {
                    pi = sp + 1;
                    ai = sa + 1;
                    star = Some((sp, sa + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
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

/// Changes the settings of the request's bucket (NoSuchBucket if it has gone).
pub(super) async fn update(
    s3: &S3,
    req: &Req,
    change: impl FnOnce(&mut BucketSettings),
) -> Result<()> {
    let mut bucket = s3.engine.bucket(req.bucket()).await?;
    change(&mut bucket.settings);
    Ok(s3
        .engine
        .set_bucket_settings(req.bucket(), bucket.settings)
        .await?)
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
                read: vec!["arn:aws:s3:::site/*".into()],
                ..PublicAccess::default()
            }
        );
        assert_eq!(
            public_access(&BucketSettings::default()),
            PublicAccess::default()
        );
    }

    #[test]
    fn resources_are_matched_exactly() {
        let policy = PUBLIC_READ.replace("site/*", "site/public/*");
        validate_policy("site", &policy).unwrap();
        let access = public_access(&BucketSettings {
            policy: Some(policy),
            ..Default::default()
        });
        assert!(access.can_read("site", "public/a.txt"));
        assert!(access.can_read("site", "public/deep/er/b"));
        assert!(!access.can_read("site", "private/b.txt"));
        assert!(!access.can_read("site", "public"));
        assert!(!access.can_read("site", "Public/a.txt"));
        assert!(!access.can_read("other", "public/a.txt"));
        assert!(!access.list);
        let acl = public_access(&BucketSettings {
            public_read_acl: true,
            ..Default::default()
        });
        assert!(acl.can_read("site", "anything"));
    }

    #[test]
    fn arn_wildcards() {
        assert!(arn_matches("arn:aws:s3:::b/*", "arn:aws:s3:::b/"));
        assert!(arn_matches(
            "arn:aws:s3:::b/*.png",
            "arn:aws:s3:::b/x/y.png"
        ));
        assert!(!arn_matches(
            "arn:aws:s3:::b/*.png",
            "arn:aws:s3:::b/x/y.png.txt"
        ));
        assert!(arn_matches("arn:aws:s3:::b/a?c", "arn:aws:s3:::b/abc"));
        assert!(!arn_matches("arn:aws:s3:::b/a?c", "arn:aws:s3:::b/ac"));
        assert!(arn_matches(
            "arn:aws:s3:::b/*/index.html",
            "arn:aws:s3:::b/x/y/index.html"
        ));
        assert!(!arn_matches("arn:aws:s3:::b/key", "arn:aws:s3:::b/key2"));
        assert!(arn_matches("arn:aws:s3:::b/**", "arn:aws:s3:::b/k"));
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
