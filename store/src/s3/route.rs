//! Request routing: (method, host, path, query, a few headers) → [`Endpoint`], named after the
//! AWS operation. Unknown combinations fall into one `NotImplemented` answer.

use http::Method;
use percent_encoding::percent_decode_str;

use crate::error::{Code, Error, Result};

macro_rules! endpoints {
    ($($name:ident),* $(,)?) => {
        /// S3 operations we serve, named as in the AWS API reference.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Endpoint { $($name,)* }

        impl Endpoint {
            /// The AWS operation name (metrics label, logs).
            pub fn name(self) -> &'static str {
                match self { $(Endpoint::$name => stringify!($name),)* }
            }
        }
    };
}

endpoints!(
    ListBuckets,
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
    GetBucketWebsite,
    PutBucketWebsite,
    DeleteBucketWebsite,
    ListObjects,
    ListObjectsV2,
    ListObjectVersions,
    ListMultipartUploads,
    DeleteObjects,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    GetObjectAttributes,
    GetObjectAcl,
    PutObjectAcl,
    DeleteObject,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
);

impl Endpoint {
    /// Operations that bring a new key into being (the key must be one XML can carry).
    pub fn creates_key(self) -> bool {
        matches!(
            self,
            Endpoint::PutObject | Endpoint::CopyObject | Endpoint::CreateMultipartUpload
        )
    }

    /// Operations an anonymous client may call on a bucket whose policy or ACL makes it
    /// publicly readable.
    pub fn is_public_read(self) -> bool {
        matches!(self, Endpoint::GetObject | Endpoint::HeadObject)
    }

    /// Listing operations a policy granting `s3:ListBucket` opens to anonymous clients.
    pub fn is_public_list(self) -> bool {
        matches!(self, Endpoint::ListObjects | Endpoint::ListObjectsV2)
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

/// Decoded query parameters in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Query(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Splits the target into bucket and key (virtual-hosted when the Host is
/// `<bucket>.<base_domain>`, path-style otherwise) and picks the operation.
pub fn route(
    method: &Method,
    host: Option<&str>,
    path: &str,
    query: &Query,
    has_copy_source: bool,
    base_domain: Option<&str>,
) -> Result<Route> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let (bucket, raw_key) = match virtual_host_bucket(host, base_domain) {
        Some(bucket) => (bucket.to_owned(), path),
        None => match path.split_once('/') {
            Some((b, k)) => (decode_path(b)?, k),
            None => (decode_path(path)?, ""),
        },
    };
    check_bucket_bytes(&bucket)?;
    let key = decode_path(raw_key)?;
    let endpoint = if bucket.is_empty() {
        service_endpoint(method)?
    } else if key.is_empty() {
        bucket_endpoint(method, query)?
    } else {
        object_endpoint(method, query, has_copy_source)?
    };
    Ok(Route {
        endpoint,
        bucket,
        key,
    })
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
        .map_err(|_| Error::msg(Code::InvalidArgument, "Object key is not valid UTF-8"))
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

fn service_endpoint(method: &Method) -> Result<Endpoint> {
    match *method {
        Method::GET => Ok(Endpoint::ListBuckets),
        _ => Err(Error::new(Code::MethodNotAllowed)),
    }
}

/// Bucket sub-resources we do not implement; routing them to a plain listing would answer
/// a question the client did not ask.
const UNSUPPORTED_BUCKET_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "analytics",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "lifecycle",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "tagging",
    "metadataTable",
];

fn bucket_endpoint(method: &Method, q: &Query) -> Result<Endpoint> {
    if UNSUPPORTED_BUCKET_SUBRESOURCES.iter().any(|s| q.has(s)) {
        return Err(not_implemented());
    }
    use Endpoint::*;
    let e = match *method {
        Method::GET if q.has("location") => GetBucketLocation,
        Method::GET if q.has("versioning") => GetBucketVersioning,
        Method::GET if q.has("acl") => GetBucketAcl,
        Method::GET if q.has("policy") => GetBucketPolicy,
        Method::GET if q.has("website") => GetBucketWebsite,
        Method::GET if q.has("uploads") => ListMultipartUploads,
        Method::GET if q.has("versions") => ListObjectVersions,
        Method::GET if q.get("list-type") == Some("2") => ListObjectsV2,
        Method::GET => ListObjects,
        Method::HEAD => HeadBucket,
        Method::PUT if q.has("versioning") => return Err(not_implemented()),
        Method::PUT if q.has("acl") => PutBucketAcl,
        Method::PUT if q.has("policy") => PutBucketPolicy,
        Method::PUT if q.has("website") => PutBucketWebsite,
        Method::PUT => CreateBucket,
        Method::DELETE if q.has("policy") => DeleteBucketPolicy,
        Method::DELETE if q.has("website") => DeleteBucketWebsite,
        Method::DELETE => DeleteBucket,
        Method::POST if q.has("delete") => DeleteObjects,
        _ => return Err(not_implemented()),
    };
    Ok(e)
}

fn object_endpoint(method: &Method, q: &Query, copy_source: bool) -> Result<Endpoint> {
    use Endpoint::*;
    if [
        "tagging",
        "retention",
        "legal-hold",
        "torrent",
        "restore",
        "select",
    ]
    .iter()
    .any(|s| q.has(s))
    {
        return Err(not_implemented());
    }
    let e = match *method {
        Method::GET if q.has("uploadId") => ListParts,
        Method::GET if q.has("attributes") => GetObjectAttributes,
        Method::GET if q.has("acl") => GetObjectAcl,
        Method::GET => GetObject,
        Method::HEAD => HeadObject,
        Method::PUT if q.has("acl") => PutObjectAcl,
        Method::PUT if q.has("uploadId") && copy_source => UploadPartCopy,
        Method::PUT if q.has("uploadId") => UploadPart,
        Method::PUT if copy_source => CopyObject,
        Method::PUT => PutObject,
        Method::DELETE if q.has("uploadId") => AbortMultipartUpload,
        Method::DELETE => DeleteObject,
        Method::POST if q.has("uploads") => CreateMultipartUpload,
        Method::POST if q.has("uploadId") => CompleteMultipartUpload,
        _ => return Err(not_implemented()),
    };
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Endpoint::*;

    fn r(method: Method, target: &str, copy: bool) -> Result<Route> {
        let (path, query) = target
            .split_once('?')
            .map_or((target, None), |(p, q)| (p, Some(q)));
        route(
            &method,
            Some("localhost:9000"),
            path,
            &Query::parse(query),
            copy,
            None,
        )
    }

    fn ep(method: Method, target: &str) -> Endpoint {
        r(method, target, false).unwrap().endpoint
    }

    #[test]
    fn every_row_routes() {
        let rows = [
            (Method::GET, "/", ListBuckets),
            (Method::PUT, "/b", CreateBucket),
            (Method::HEAD, "/b", HeadBucket),
            (Method::DELETE, "/b", DeleteBucket),
            (Method::GET, "/b?location", GetBucketLocation),
            (Method::GET, "/b?versioning", GetBucketVersioning),
            (Method::GET, "/b?acl", GetBucketAcl),
            (Method::PUT, "/b?acl", PutBucketAcl),
            (Method::GET, "/b?policy", GetBucketPolicy),
            (Method::PUT, "/b?policy", PutBucketPolicy),
            (Method::DELETE, "/b?policy", DeleteBucketPolicy),
            (Method::GET, "/b?website", GetBucketWebsite),
            (Method::PUT, "/b?website", PutBucketWebsite),
            (Method::DELETE, "/b?website", DeleteBucketWebsite),
            (Method::GET, "/b", ListObjects),
            (Method::GET, "/b?list-type=2&prefix=a", ListObjectsV2),
            (Method::GET, "/b?versions", ListObjectVersions),
            (Method::GET, "/b?uploads", ListMultipartUploads),
            (Method::POST, "/b?delete", DeleteObjects),
            (Method::PUT, "/b/k", PutObject),
            (Method::GET, "/b/k", GetObject),
            (Method::HEAD, "/b/k", HeadObject),
            (Method::GET, "/b/k?attributes", GetObjectAttributes),
            (Method::GET, "/b/k?acl", GetObjectAcl),
            (Method::PUT, "/b/k?acl", PutObjectAcl),
            (Method::DELETE, "/b/k", DeleteObject),
            (Method::POST, "/b/k?uploads", CreateMultipartUpload),
            (Method::PUT, "/b/k?partNumber=1&uploadId=u", UploadPart),
            (Method::POST, "/b/k?uploadId=u", CompleteMultipartUpload),
            (Method::DELETE, "/b/k?uploadId=u", AbortMultipartUpload),
            (Method::GET, "/b/k?uploadId=u", ListParts),
        ];
        for (method, target, want) in rows {
            assert_eq!(ep(method.clone(), target), want, "{method} {target}");
        }
        assert_eq!(r(Method::PUT, "/b/k", true).unwrap().endpoint, CopyObject);
        assert_eq!(
            r(Method::PUT, "/b/k?partNumber=2&uploadId=u", true)
                .unwrap()
                .endpoint,
            UploadPartCopy
        );
    }

    #[test]
    fn unknown_operations_are_not_implemented() {
        for target in [
            "/b?replication",
            "/b?cors",
            "/b/k?tagging",
            "/b/k?select&select-type=2",
        ] {
            let e = r(Method::GET, target, false).unwrap_err();
            assert_eq!(e.code, Code::NotImplemented, "{target}");
        }
        assert_eq!(
            r(Method::POST, "/b/k", false).unwrap_err().code,
            Code::NotImplemented
        );
        assert_eq!(
            r(Method::DELETE, "/", false).unwrap_err().code,
            Code::MethodNotAllowed
        );
    }

    #[test]
    fn keys_are_decoded_verbatim() {
        let route = r(Method::GET, "/b/a%2F..%2F%2Fx/y/", false).unwrap();
        assert_eq!(route.key, "a/..//x/y/");
        let route = r(Method::GET, "/b/caf%C3%A9+x", false).unwrap();
        assert_eq!(route.key, "café+x");
        assert_eq!(
            r(Method::GET, "/b/%FF", false).unwrap_err().code,
            Code::InvalidArgument
        );
    }

    #[test]
    fn bucket_segments_that_name_no_bucket_are_refused() {
        for target in [
            "/b%2Fk",
            "/b%2fk/more",
            "/b%00",
            "/%00b/k",
            "/B/k",
            "/b%20/k",
            "/b%C3%A9/k",
            "/b%5C/k",
        ] {
            for method in [Method::GET, Method::PUT, Method::DELETE, Method::HEAD] {
                let e = r(method.clone(), target, false).unwrap_err();
                assert_eq!(e.code, Code::InvalidBucketName, "{method} {target}");
            }
        }
        let e = route(
            &Method::DELETE,
            Some("b%2fk.s3.local"),
            "/",
            &Query::default(),
            false,
            Some("s3.local"),
        )
        .unwrap_err();
        assert_eq!(e.code, Code::InvalidBucketName);
        assert_eq!(r(Method::GET, "/my-b.1/k", false).unwrap().bucket, "my-b.1");
    }

    #[test]
    fn virtual_hosted_style() {
        let q = Query::default();
        let route = route(
            &Method::GET,
            Some("site.s3.local:9000"),
            "/a/b",
            &q,
            false,
            Some("s3.local"),
        )
        .unwrap();
        assert_eq!((route.bucket.as_str(), route.key.as_str()), ("site", "a/b"));
        let route = super::route(
            &Method::GET,
            Some("s3.local"),
            "/site/a",
            &q,
            false,
            Some("s3.local"),
        )
        .unwrap();
        assert_eq!((route.bucket.as_str(), route.key.as_str()), ("site", "a"));
    }

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some("prefix=a%2Fb&delimiter=%2F&uploads"));
        assert_eq!(q.get("prefix"), Some("a/b"));
        assert_eq!(q.get("delimiter"), Some("/"));
        assert!(q.has("uploads"));
    }
}
