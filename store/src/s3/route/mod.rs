//! Request routing: (method, host, path, query, a few headers) → [`Endpoint`], named after the
//! AWS operation and carrying its parameters, parsed and validated once here ([`params`]).
//! Operations we know but do not serve route to [`Endpoint::Unsupported`] under their AWS name
//! ([`unsupported`]); unknown combinations are refused as NotImplemented.

mod action;
pub mod params;
#[cfg(test)]
mod tests;
mod unsupported;

use http::Method;
use percent_encoding::percent_decode_str;

use crate::error::{Code, Error, Result};
pub use params::{
    CopySource, Encoding, ListBucketsParams, ListObjectsParams, ListObjectsV2Params, ListParams,
    ListPartsParams, ListUploadsParams, ListVersionsParams, PartParams, Query, ReadParams,
};
use unsupported::Found;

macro_rules! endpoints {
    ($($name:ident $(($($field:ty),*))?,)*) => {
        /// S3 operations, named as in the AWS API reference, with their parameters.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Endpoint {
            $($name $(($($field),*))?,)*
            /// An operation we do not implement (answered NotImplemented), by its AWS name.
            Unsupported(&'static str),
        }

        impl Endpoint {
            /// The AWS operation name (metrics label, logs).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Endpoint::$name { .. } => stringify!($name),)*
                    Endpoint::Unsupported(name) => name,
                }
            }
        }
    };
}

endpoints!(
    ListBuckets(ListBucketsParams),
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    GetBucketVersioning,
    GetBucketAcl,
    PutBucketAcl,
    GetBucketPolicy,
    PutBucketPolicy,
    DeleteBucketPolicy,
    GetBucketPolicyStatus,
    GetPublicAccessBlock,
    PutPublicAccessBlock,
    DeletePublicAccessBlock,
    GetBucketWebsite,
    PutBucketWebsite,
    DeleteBucketWebsite,
    GetBucketCors,
    PutBucketCors,
    DeleteBucketCors,
    ListObjects(ListObjectsParams),
    ListObjectsV2(ListObjectsV2Params),
    ListObjectVersions(ListVersionsParams),
    ListMultipartUploads(ListUploadsParams),
    DeleteObjects,
    PutObject,
    PostObject,
    CopyObject(CopySource),
    GetObject(ReadParams),
    HeadObject(ReadParams),
    GetObjectAttributes,
    GetObjectAcl,
    PutObjectAcl,
    DeleteObject,
    CreateMultipartUpload,
    UploadPart(PartParams),
    UploadPartCopy(PartParams, CopySource),
    CompleteMultipartUpload(String),
    AbortMultipartUpload(String),
    ListParts(ListPartsParams),
);

impl Endpoint {
    /// Operations that bring a new key into being (the key must be one XML can carry).
    pub fn creates_key(&self) -> bool {
        matches!(
            self,
            Endpoint::PutObject | Endpoint::CopyObject(_) | Endpoint::CreateMultipartUpload
        )
    }

    /// Operations whose signature is in their body, not their head: a browser's form upload
    /// carries its credential, policy and signature as form fields ([`crate::s3::post`]), so
    /// the operation authenticates and authorises itself once it has read them.
    pub fn authenticates_itself(&self) -> bool {
        matches!(self, Endpoint::PostObject)
    }

    /// The listing parameters policy conditions read (`s3:prefix`, `s3:delimiter`).
    pub fn list_params(&self) -> Option<&ListParams> {
        match self {
            Endpoint::ListObjects(p) => Some(&p.list),
            Endpoint::ListObjectsV2(p) => Some(&p.list),
            Endpoint::ListObjectVersions(p) => Some(&p.list),
            _ => None,
        }
    }

    /// The object a copy reads (it needs `s3:GetObject` there too).
    pub fn copy_source(&self) -> Option<&CopySource> {
        match self {
            Endpoint::CopyObject(source) | Endpoint::UploadPartCopy(_, source) => Some(source),
            _ => None,
        }
    }
}

/// A routed request: the operation and its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub endpoint: Endpoint,
    /// Empty for service-level operations.
    pub bucket: String,
    /// Decoded object key; empty for bucket-level operations.
    pub key: String,
}

/// Splits the target into bucket and key (virtual-hosted when the Host is
/// `<bucket>.<base_domain>`, path-style otherwise) and picks the operation.
pub fn route(
    method: &Method,
    host: Option<&str>,
    path: &str,
    query: &Query,
    copy_source: Option<&str>,
    base_domain: Option<&str>,
) -> Result<Route> {
    let (bucket, key) = target(host, path, base_domain)?;
    let endpoint = if bucket.is_empty() {
        service_endpoint(method, query)?
    } else if key.is_empty() {
        bucket_endpoint(method, query)?
    } else {
        object_endpoint(method, query, copy_source)?
    };
    Ok(Route {
        endpoint,
        bucket,
        key,
    })
}

/// The bucket and decoded key a request is for (empty bucket: the service), whatever the
/// operation: what a preflight, which names no operation, is about.
pub fn target(
    host: Option<&str>,
    path: &str,
    base_domain: Option<&str>,
) -> Result<(String, String)> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let (bucket, raw_key) = match virtual_host_bucket(host, base_domain) {
        Some(bucket) => (bucket.to_owned(), path),
        None => match path.split_once('/') {
            Some((b, k)) => (decode_path(b)?, k),
            None => (decode_path(path)?, ""),
        },
    };
    check_bucket_bytes(&bucket)?;
    Ok((bucket, decode_path(raw_key)?))
}

/// A byte a bucket name may hold (S3's naming rules; [`validate_bucket_name`] checks the rest
/// when a bucket is created).
///
/// [`validate_bucket_name`]: crate::s3::ops::bucket::validate_bucket_name
pub fn is_bucket_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
}

/// A bucket segment with any other byte names no bucket that can exist. Refused here, before
/// anything acts on it: decoded from `%2F`, a `/` would make `/b%2Fk` mean the object `b/k` to
/// whoever rebuilds the path (an edge relaying it), while the store routed a bucket.
fn check_bucket_bytes(bucket: &str) -> Result<()> {
    if bucket.bytes().all(is_bucket_name_byte) {
        Ok(())
    } else {
        Err(Error::new(Code::InvalidBucketName))
    }
}

fn decode_path(s: &str) -> Result<String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Error::new(Code::InvalidURI))
}

fn virtual_host_bucket<'a>(host: Option<&'a str>, base_domain: Option<&str>) -> Option<&'a str> {
    let base = base_domain?;
    let host = host?;
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    host.strip_suffix(base)?
        .strip_suffix('.')
        .filter(|b| !b.is_empty())
}

fn not_implemented() -> Error {
    Error::new(Code::NotImplemented)
}

fn service_endpoint(method: &Method, q: &Query) -> Result<Endpoint> {
    match *method {
        Method::GET => Ok(Endpoint::ListBuckets(ListBucketsParams::parse(q)?)),
        _ => Err(Error::new(Code::MethodNotAllowed)),
    }
}

fn bucket_endpoint(method: &Method, q: &Query) -> Result<Endpoint> {
    match unsupported::bucket(method.as_str(), |s| q.has(s)) {
        Found::Operation(name) => return Ok(Endpoint::Unsupported(name)),
        Found::Unknown => return Err(not_implemented()),
        Found::None => {}
    }
    use Endpoint::*;
    let e = match *method {
        Method::GET if q.has("location") => GetBucketLocation,
        Method::GET if q.has("versioning") => GetBucketVersioning,
        Method::GET if q.has("acl") => GetBucketAcl,
        Method::GET if q.has("policy") => GetBucketPolicy,
        Method::GET if q.has("policyStatus") => GetBucketPolicyStatus,
        Method::GET if q.has("publicAccessBlock") => GetPublicAccessBlock,
        Method::GET if q.has("website") => GetBucketWebsite,
        Method::GET if q.has("cors") => GetBucketCors,
        Method::GET if q.has("uploads") => ListMultipartUploads(ListUploadsParams::parse(q)?),
        Method::GET if q.has("versions") => ListObjectVersions(ListVersionsParams::parse(q)?),
        Method::GET if q.get("list-type") == Some("2") => {
            ListObjectsV2(ListObjectsV2Params::parse(q)?)
        }
        Method::GET => ListObjects(ListObjectsParams::parse(q)?),
        Method::HEAD => HeadBucket,
        Method::PUT if q.has("versioning") => Unsupported("PutBucketVersioning"),
        Method::PUT if q.has("acl") => PutBucketAcl,
        Method::PUT if q.has("policy") => PutBucketPolicy,
        Method::PUT if q.has("publicAccessBlock") => PutPublicAccessBlock,
        Method::PUT if q.has("website") => PutBucketWebsite,
        Method::PUT if q.has("cors") => PutBucketCors,
        Method::PUT => CreateBucket,
        Method::DELETE if q.has("policy") => DeleteBucketPolicy,
        Method::DELETE if q.has("publicAccessBlock") => DeletePublicAccessBlock,
        Method::DELETE if q.has("website") => DeleteBucketWebsite,
        Method::DELETE if q.has("cors") => DeleteBucketCors,
        Method::DELETE => DeleteBucket,
        Method::POST if q.has("delete") => DeleteObjects,
        // A browser form upload: the key is a form field. AWS answers any other plain POST to
        // a bucket as one too (refused unless multipart/form-data), so the Content-Type is
        // checked by the operation. A POST naming a sub-resource (`POST /b?cors`) is no form.
        Method::POST if q.iter().next().is_none() => PostObject,
        _ => return Err(not_implemented()),
    };
    Ok(e)
}

fn object_endpoint(method: &Method, q: &Query, copy_source: Option<&str>) -> Result<Endpoint> {
    match unsupported::object(method.as_str(), |s| q.has(s)) {
        Found::Operation(name) => return Ok(Endpoint::Unsupported(name)),
        Found::Unknown => return Err(not_implemented()),
        Found::None => {}
    }
    use Endpoint::*;
    let upload = q.has("uploadId");
    let source = || CopySource::parse(copy_source.unwrap_or_default());
    let e = match *method {
        Method::GET if upload => ListParts(ListPartsParams::parse(q)?),
        Method::GET if q.has("attributes") => {
            params::version_id(q.get("versionId"))?;
            GetObjectAttributes
        }
        Method::GET if q.has("acl") => GetObjectAcl,
        Method::GET => GetObject(ReadParams::parse(q)?),
        Method::HEAD => HeadObject(ReadParams::parse(q)?),
        Method::PUT if q.has("acl") => PutObjectAcl,
        Method::PUT if upload && copy_source.is_some() => {
            UploadPartCopy(PartParams::parse(q)?, source()?)
        }
        Method::PUT if upload => UploadPart(PartParams::parse(q)?),
        Method::PUT if copy_source.is_some() => CopyObject(source()?),
        Method::PUT => PutObject,
        Method::DELETE if upload => AbortMultipartUpload(params::upload_id(q)?),
        Method::DELETE => DeleteObject,
        Method::POST if q.has("uploads") => CreateMultipartUpload,
        Method::POST if upload => CompleteMultipartUpload(params::upload_id(q)?),
        _ => return Err(not_implemented()),
    };
    Ok(e)
}
