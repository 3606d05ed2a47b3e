//! Service and bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
//! GetBucketLocation, GetBucketVersioning.

use http::StatusCode;

use crate::engine::{BucketSettings, Kind};
use crate::error::{Code, Error, Result};
use crate::s3::route::ListBucketsParams;
use crate::s3::route::params::encode_token;
use crate::s3::xml::{self, XmlWriter};
use crate::s3::{Req, Response, S3, empty_response, xml_response};

/// ListBuckets, in name order, paginated when the client asks (`max-buckets`): the next
/// page's token names the last bucket of this one. An index key sees only the buckets it
/// holds a grant on.
pub async fn list_buckets(s3: &S3, req: Req, p: ListBucketsParams) -> Result<Response> {
    let region = &s3.config.region;
    let in_region = p.bucket_region.as_ref().is_none_or(|r| r == region);
    let buckets = if in_region {
        s3.engine.list_buckets().await?
    } else {
        Vec::new()
    };
    let signer = s3.signer(&req.access)?;
    let mut selected = buckets
        .iter()
        .filter(|b| {
            signer
                .as_ref()
                .is_none_or(|k| k.grants.contains_key(&b.name))
        })
        .filter(|b| {
            p.prefix
                .as_ref()
                .is_none_or(|pre| b.name.starts_with(pre.as_str()))
        })
        .filter(|b| p.resume_after.as_ref().is_none_or(|after| &b.name > after));
    let page: Vec<_> = selected.by_ref().take(p.max_buckets).collect();
    let more = selected.next().is_some();

    let mut w = XmlWriter::new("ListAllMyBucketsResult");
    w.owner("Owner", &s3.owner_id).open("Buckets");
    for b in &page {
        w.open("Bucket")
            .elem("Name", &b.name)
            .elem("CreationDate", xml::iso8601(b.created))
            .elem("BucketRegion", region)
            .close();
    }
    w.close();
    let next = page.last().filter(|_| more).map(|b| encode_token(&b.name));
    w.opt("ContinuationToken", next)
        .opt("Prefix", p.prefix.as_deref());
    Ok(xml_response(w.finish()))
}

pub async fn create_bucket(s3: &S3, mut req: Req) -> Result<Response> {
    let name = req.bucket().to_owned();
    validate_bucket_name(&name)?;
    let body = xml::read_small_body(req.take_body(), 64 << 10).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let config: xml::CreateBucketConfiguration = xml::parse(&body)?;
        // S3 rejects naming us-east-1 explicitly; we accept our own region either way.
        match config.location_constraint.as_deref() {
            None | Some("") => {}
            Some(region) if region == s3.config.region => {}
            Some(_) => return Err(Error::new(Code::InvalidLocationConstraint)),
        }
    }
    super::acl::check_headers(
        &req,
        Code::InvalidBucketAclWithObjectOwnership,
        &s3.owner_id,
    )?;
    match req.header("x-amz-object-ownership") {
        None | Some("BucketOwnerEnforced") => {}
        Some(_) => {
            return Err(Error::msg(
                Code::NotImplemented,
                "Only the BucketOwnerEnforced object ownership (ACLs disabled) is supported.",
            ));
        }
    }
    let settings = BucketSettings::default();
    // A key other than the root owns what it creates; the root key owns every bucket.
    let signer = s3.signer(&req.access)?;
    let created = match &signer {
        Some(key) => {
            let owner = &key.access_key_id;
            s3.engine.create_bucket_for(&name, settings, owner).await
        }
        None => s3.engine.create_bucket(&name, settings).await,
    };
    match created {
        Err(e) if e.kind() == Kind::AlreadyExists => {
            let yours = signer.as_ref().is_none_or(|k| k.grant(&name).owner);
            if !yours {
                return Err(Error::new(Code::BucketAlreadyExists));
            }
            // us-east-1's legacy answer to creating a bucket you already own: success, and
            // nothing about the bucket changes. Elsewhere 409 BucketAlreadyOwnedByYou.
            if s3.config.region != "us-east-1" {
                return Err(e.into());
            }
        }
        // The key was deleted after its signature was checked.
        Err(e) if e.kind() == Kind::NotFound(crate::engine::What::AccessKey) => {
            return Err(Error::new(Code::AccessDenied));
        }
        created => created?,
    }
    Ok(http::Response::builder()
        .header(http::header::LOCATION, format!("/{name}"))
        .body(axum::body::Body::empty())
        .expect("valid response"))
}

pub async fn head_bucket(s3: &S3, req: Req) -> Result<Response> {
    s3.engine.bucket(req.bucket()).await?;
    Ok(http::Response::builder()
        .header("x-amz-bucket-region", &s3.config.region)
        .body(axum::body::Body::empty())
        .expect("valid response"))
}

pub async fn delete_bucket(s3: &S3, req: Req) -> Result<Response> {
    s3.engine.delete_bucket(req.bucket()).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn get_location(s3: &S3, req: Req) -> Result<Response> {
    s3.engine.bucket(req.bucket()).await?;
    // us-east-1 is reported as an empty constraint, as S3 does.
    let region = if s3.config.region == "us-east-1" {
        ""
    } else {
        &s3.config.region
    };
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{}\">{}</LocationConstraint>",
        xml::S3_NAMESPACE,
        quick_xml::escape::escape(region)
    );
    Ok(xml_response(xml))
}

/// Buckets are never versioned: an empty configuration means "never enabled".
pub async fn get_versioning(s3: &S3, req: Req) -> Result<Response> {
    s3.engine.bucket(req.bucket()).await?;
    Ok(xml_response(
        XmlWriter::new("VersioningConfiguration").finish(),
    ))
}

/// S3's general-purpose bucket naming rules.
pub fn validate_bucket_name(name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let allowed = |b: &u8| crate::s3::route::is_bucket_name_byte(*b);
    let alnum = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let looks_like_ip =
        name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok());
    let reserved = ["xn--", "sthree-", "amzn-s3-demo-"]
        .iter()
        .any(|p| name.starts_with(p))
        || ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
            .iter()
            .any(|s| name.ends_with(s));
    let valid = (3..=63).contains(&bytes.len())
        && bytes.iter().all(allowed)
        && alnum(bytes.first())
        && alnum(bytes.last())
        && !name.contains("..")
        && !looks_like_ip
        && !reserved;
    if valid {
        Ok(())
    } else {
        Err(Error::new(Code::InvalidBucketName))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.v2", "a1b", &"a".repeat(63)] {
            assert!(validate_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "ABC",
            "a_b",
            "-ab",
            "ab-",
            "a..b",
            "192.168.1.1",
            "xn--ab",
            "ab-s3alias",
            &"a".repeat(64),
            "a b",
        ] {
            assert_eq!(
                validate_bucket_name(bad).unwrap_err().code,
                Code::InvalidBucketName,
                "{bad}"
            );
        }
    }
}
