use super::params::{MAX_BUCKETS, MAX_PAGE, encode_token};
use super::*;
use Endpoint::*;

fn r(method: Method, target: &str, copy: Option<&str>) -> Result<Route> {
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
    r(method, target, None).unwrap().endpoint
}

fn err(method: Method, target: &str) -> Error {
    r(method, target, None).unwrap_err()
}

fn list(prefix: &str, delimiter: Option<&str>, max: usize, url: bool) -> ListParams {
    ListParams {
        prefix: prefix.into(),
        delimiter: delimiter.map(Into::into),
        max,
        encoding: Encoding { url },
    }
}

fn part(upload_id: &str, part_number: u32) -> PartParams {
    PartParams {
        upload_id: upload_id.into(),
        part_number,
    }
}

fn source(bucket: &str, key: &str) -> CopySource {
    CopySource {
        bucket: bucket.into(),
        key: key.into(),
    }
}

fn all_buckets() -> ListBucketsParams {
    ListBucketsParams {
        max_buckets: MAX_BUCKETS,
        ..Default::default()
    }
}

#[test]
fn every_row_routes() {
    let default_list = list("", None, MAX_PAGE, false);
    let rows = [
        (Method::GET, "/", ListBuckets(all_buckets())),
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
        (Method::GET, "/b?policyStatus", GetBucketPolicyStatus),
        (Method::GET, "/b?publicAccessBlock", GetPublicAccessBlock),
        (Method::PUT, "/b?publicAccessBlock", PutPublicAccessBlock),
        (
            Method::DELETE,
            "/b?publicAccessBlock",
            DeletePublicAccessBlock,
        ),
        (Method::GET, "/b?website", GetBucketWebsite),
        (Method::GET, "/b?cors", GetBucketCors),
        (Method::PUT, "/b?cors", PutBucketCors),
        (Method::DELETE, "/b?cors", DeleteBucketCors),
        (Method::PUT, "/b?website", PutBucketWebsite),
        (Method::DELETE, "/b?website", DeleteBucketWebsite),
        (
            Method::GET,
            "/b",
            ListObjects(ListObjectsParams {
                list: default_list.clone(),
                marker: None,
            }),
        ),
        (
            Method::GET,
            "/b?list-type=2&prefix=a",
            ListObjectsV2(ListObjectsV2Params {
                list: list("a", None, MAX_PAGE, false),
                ..Default::default()
            }),
        ),
        (
            Method::GET,
            "/b?versions",
            ListObjectVersions(ListVersionsParams {
                list: default_list.clone(),
                ..Default::default()
            }),
        ),
        (
            Method::GET,
            "/b?uploads",
            ListMultipartUploads(ListUploadsParams {
                list: default_list.clone(),
                ..Default::default()
            }),
        ),
        (Method::POST, "/b?delete", DeleteObjects),
        (Method::POST, "/b", PostObject),
        (Method::PUT, "/b/k", PutObject),
        (Method::GET, "/b/k", GetObject(ReadParams::default())),
        (Method::HEAD, "/b/k", HeadObject(ReadParams::default())),
        (Method::GET, "/b/k?attributes", GetObjectAttributes),
        (Method::GET, "/b/k?acl", GetObjectAcl),
        (Method::PUT, "/b/k?acl", PutObjectAcl),
        (Method::DELETE, "/b/k", DeleteObject),
        (Method::POST, "/b/k?uploads", CreateMultipartUpload),
        (
            Method::PUT,
            "/b/k?partNumber=1&uploadId=u",
            UploadPart(part("u", 1)),
        ),
        (
            Method::POST,
            "/b/k?uploadId=u",
            CompleteMultipartUpload("u".into()),
        ),
        (
            Method::DELETE,
            "/b/k?uploadId=u",
            AbortMultipartUpload("u".into()),
        ),
        (
            Method::GET,
            "/b/k?uploadId=u",
            ListParts(ListPartsParams {
                upload_id: "u".into(),
                part_number_marker: 0,
                max_parts: MAX_PAGE,
            }),
        ),
        (
            Method::PUT,
            "/b?versioning",
            Unsupported("PutBucketVersioning"),
        ),
    ];
    for (method, target, want) in rows {
        assert_eq!(ep(method.clone(), target), want, "{method} {target}");
    }
    let copy = |target| r(Method::PUT, target, Some("/src/a%20b")).unwrap().endpoint;
    assert_eq!(copy("/b/k"), CopyObject(source("src", "a b")));
    assert_eq!(
        copy("/b/k?partNumber=2&uploadId=u"),
        UploadPartCopy(part("u", 2), source("src", "a b"))
    );
}

#[test]
fn names_are_aws_operation_names() {
    assert_eq!(ep(Method::GET, "/").name(), "ListBuckets");
    assert_eq!(ep(Method::GET, "/b/k").name(), "GetObject");
    assert_eq!(ep(Method::GET, "/b/k?uploadId=u").name(), "ListParts");
    assert_eq!(ep(Method::PUT, "/b?cors").name(), "PutBucketCors");
}

#[test]
fn list_parameters_are_parsed_in_routing() {
    let e = ep(
        Method::GET,
        "/b?prefix=a%2F&delimiter=%2F&max-keys=5&marker=m&encoding-type=url",
    );
    assert_eq!(
        e,
        ListObjects(ListObjectsParams {
            list: list("a/", Some("/"), 5, true),
            marker: Some("m".into()),
        })
    );
    let token = encode_token("k9");
    let e = ep(
        Method::GET,
        &format!("/b?list-type=2&continuation-token={token}&start-after=a&fetch-owner=true"),
    );
    assert_eq!(
        e,
        ListObjectsV2(ListObjectsV2Params {
            list: list("", None, MAX_PAGE, false),
            continuation_token: Some(token),
            start_after: Some("a".into()),
            resume_after: Some("k9".into()),
            fetch_owner: true,
        })
    );
    // An empty token is absent (start-after decides) but echoed.
    let ListObjectsV2(p) = ep(
        Method::GET,
        "/b?list-type=2&continuation-token=&start-after=a",
    ) else {
        panic!("not ListObjectsV2");
    };
    assert_eq!(p.continuation_token.as_deref(), Some(""));
    assert_eq!(p.resume_after.as_deref(), Some("a"));
    // Empty markers and delimiters are not given; max-keys is capped at 1000.
    assert_eq!(
        ep(Method::GET, "/b?marker=&delimiter=&max-keys=5000"),
        ListObjects(ListObjectsParams {
            list: list("", None, MAX_PAGE, false),
            marker: None,
        })
    );
    assert_eq!(
        ep(
            Method::GET,
            "/b?versions&key-marker=k&version-id-marker=null"
        ),
        ListObjectVersions(ListVersionsParams {
            list: list("", None, MAX_PAGE, false),
            key_marker: Some("k".into()),
            version_id_marker: Some("null".into()),
        })
    );
    // S3 ignores upload-id-marker without key-marker.
    assert_eq!(
        ep(Method::GET, "/b?uploads&upload-id-marker=u&max-uploads=0"),
        ListMultipartUploads(ListUploadsParams {
            list: list("", None, 0, false),
            ..Default::default()
        })
    );
    assert_eq!(
        ep(
            Method::GET,
            "/b/k?uploadId=u&part-number-marker=99999999999&max-parts=2"
        ),
        ListParts(ListPartsParams {
            upload_id: "u".into(),
            part_number_marker: u32::MAX,
            max_parts: 2,
        })
    );
}

#[test]
fn list_buckets_pagination() {
    let token = encode_token("b2");
    assert_eq!(
        ep(
            Method::GET,
            &format!("/?max-buckets=2&continuation-token={token}&prefix=b&bucket-region=r1")
        ),
        ListBuckets(ListBucketsParams {
            prefix: Some("b".into()),
            max_buckets: 2,
            resume_after: Some("b2".into()),
            bucket_region: Some("r1".into()),
        })
    );
    for bad in ["/?max-buckets=0", "/?max-buckets=10001", "/?max-buckets=x"] {
        assert_eq!(err(Method::GET, bad).code, Code::InvalidArgument, "{bad}");
    }
    assert_eq!(
        err(Method::GET, "/?continuation-token=!!").code,
        Code::InvalidArgument
    );
}

#[test]
fn invalid_list_parameters_are_invalid_arguments() {
    for bad in [
        "/b?max-keys=abc",
        "/b?max-keys=-1",
        "/b?max-keys=",
        "/b?max-keys=1.5",
        "/b?list-type=2&max-keys=ten",
        "/b?encoding-type=base64",
        "/b?list-type=2&continuation-token=!!!",
        "/b?list-type=2&continuation-token=%2Fw%3D%3D",
        "/b?versions&version-id-marker=v",
        "/b?uploads&max-uploads=many",
        "/b/k?uploadId=u&part-number-marker=x",
        "/b/k?uploadId=u&max-parts=-5",
    ] {
        assert_eq!(err(Method::GET, bad).code, Code::InvalidArgument, "{bad}");
    }
    let e = err(Method::GET, "/b?list-type=2&continuation-token=%21");
    assert_eq!(e.message(), "The continuation token provided is incorrect");
    let e = err(Method::GET, "/b?max-keys=abc");
    assert_eq!(
        e.message(),
        "Provided max-keys not an integer or within integer range"
    );
}

#[test]
fn continuation_tokens_round_trip() {
    for key in ["a", "photos/2024/", "café +?&=/x", "\u{10FFFF}"] {
        let token = encode_token(key);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let ListObjectsV2(p) = ep(
            Method::GET,
            &format!("/b?list-type=2&continuation-token={token}"),
        ) else {
            panic!("not ListObjectsV2");
        };
        assert_eq!(p.resume_after.as_deref(), Some(key));
    }
}

#[test]
fn object_reads_carry_version_part_and_overrides() {
    let e = ep(
        Method::GET,
        "/b/k?versionId=null&partNumber=3&response-content-type=text%2Fplain&response-expires=x",
    );
    let GetObject(p) = e else {
        panic!("not GetObject")
    };
    assert_eq!(p.version_id.as_deref(), Some("null"));
    assert_eq!(p.part_number, Some(3));
    assert_eq!(
        p.overrides,
        vec![
            (
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain")
            ),
            (http::header::EXPIRES, http::HeaderValue::from_static("x")),
        ]
    );
    for method in [Method::GET, Method::HEAD] {
        for bad in [
            "partNumber=0",
            "partNumber=10001",
            "partNumber=x",
            "partNumber=",
        ] {
            let e = err(method.clone(), &format!("/b/k?{bad}"));
            assert_eq!(e.code, Code::InvalidArgument, "{method} {bad}");
            assert_eq!(
                e.message(),
                "Part number must be an integer between 1 and 10000, inclusive"
            );
        }
        let e = err(method.clone(), "/b/k?versionId=3HL4kqtJlcpXroDTDmJ");
        assert_eq!(e.message(), "Invalid version id specified");
    }
    let e = err(Method::GET, "/b/k?attributes&versionId=v1");
    assert_eq!(e.message(), "Invalid version id specified");
}

#[test]
fn upload_parameters_are_checked() {
    for bad in [
        "partNumber=0&uploadId=u",
        "partNumber=a&uploadId=u",
        "uploadId=u",
    ] {
        let e = err(Method::PUT, &format!("/b/k?{bad}"));
        assert_eq!(e.code, Code::InvalidArgument, "{bad}");
    }
    for (method, target) in [
        (Method::PUT, "/b/k?partNumber=1&uploadId="),
        (Method::POST, "/b/k?uploadId="),
        (Method::DELETE, "/b/k?uploadId="),
        (Method::GET, "/b/k?uploadId="),
    ] {
        assert_eq!(err(method, target).code, Code::NoSuchUpload, "{target}");
    }
}

#[test]
fn copy_source_forms() {
    let parse = |v: &str| CopySource::parse(v);
    assert_eq!(parse("b/k").unwrap(), source("b", "k"));
    assert_eq!(parse("/b/dir/k").unwrap(), source("b", "dir/k"));
    assert_eq!(parse("b/a%20b%2Bc+d").unwrap(), source("b", "a b+c+d"));
    assert_eq!(parse("b/caf%C3%A9/%3Fq").unwrap(), source("b", "café/?q"));
    assert_eq!(parse("/b/k?versionId=null").unwrap(), source("b", "k"));
    assert_eq!(parse("b/k/").unwrap(), source("b", "k/"));
}

#[test]
fn copy_source_errors() {
    for bad in ["", "b", "/b", "b/", "/b/", "//k", "b/%FF"] {
        let e = r(Method::PUT, "/b/k", Some(bad)).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument, "{bad}");
        assert!(e.message().starts_with("Copy Source must mention"), "{bad}");
    }
    let e = CopySource::parse("b/k?versionId=3HL4kqtJlcpXroDTDmJ").unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert_eq!(e.message(), "Invalid version id specified");
}

#[test]
fn unsupported_operations_route_to_their_names() {
    let rows = [
        (Method::PUT, "/b?versioning", "PutBucketVersioning"),
        (Method::GET, "/b?tagging", "GetBucketTagging"),
        (
            Method::PUT,
            "/b?lifecycle",
            "PutBucketLifecycleConfiguration",
        ),
        (Method::DELETE, "/b?lifecycle", "DeleteBucketLifecycle"),
        (Method::GET, "/b?object-lock", "GetObjectLockConfiguration"),
        (Method::GET, "/b?replication", "GetBucketReplication"),
        (Method::GET, "/b?encryption", "GetBucketEncryption"),
        (Method::GET, "/b?metrics", "ListBucketMetricsConfigurations"),
        (
            Method::GET,
            "/b?metrics&id=m",
            "GetBucketMetricsConfiguration",
        ),
        (
            Method::GET,
            "/b?inventory",
            "ListBucketInventoryConfigurations",
        ),
        (
            Method::PUT,
            "/b?inventory&id=i",
            "PutBucketInventoryConfiguration",
        ),
        (
            Method::POST,
            "/b?metadataTable",
            "CreateBucketMetadataTableConfiguration",
        ),
        (Method::PUT, "/b/k?tagging", "PutObjectTagging"),
        (Method::GET, "/b/k?tagging", "GetObjectTagging"),
        (Method::DELETE, "/b/k?tagging", "DeleteObjectTagging"),
        (Method::GET, "/b/k?retention", "GetObjectRetention"),
        (Method::PUT, "/b/k?legal-hold", "PutObjectLegalHold"),
        (Method::GET, "/b/k?torrent", "GetObjectTorrent"),
        (Method::POST, "/b/k?restore", "RestoreObject"),
        (
            Method::POST,
            "/b/k?select&select-type=2",
            "SelectObjectContent",
        ),
    ];
    for (method, target, name) in rows {
        assert_eq!(
            ep(method.clone(), target),
            Unsupported(name),
            "{method} {target}"
        );
    }
}

#[test]
fn unknown_operations_are_not_implemented() {
    for (method, target) in [
        (Method::POST, "/b/k"),
        (Method::POST, "/b?cors"),
        (Method::DELETE, "/b?accelerate"),
        (Method::GET, "/b/k?restore"),
        (Method::DELETE, "/b/k?torrent"),
        (Method::PATCH, "/b"),
    ] {
        assert_eq!(err(method, target).code, Code::NotImplemented, "{target}");
    }
    assert_eq!(err(Method::DELETE, "/").code, Code::MethodNotAllowed);
}

#[test]
fn keys_are_decoded_verbatim() {
    let route = r(Method::GET, "/b/a%2F..%2F%2Fx/y/", None).unwrap();
    assert_eq!(route.key, "a/..//x/y/");
    let route = r(Method::GET, "/b/caf%C3%A9+x", None).unwrap();
    assert_eq!(route.key, "café+x");
}

#[test]
fn keys_that_are_not_utf8_are_invalid_uris() {
    for method in [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::DELETE,
        Method::POST,
    ] {
        for target in ["/b/%FF", "/b/a%C3", "/b/ok/%80x?uploads"] {
            let e = err(method.clone(), target);
            assert_eq!(e.code, Code::InvalidURI, "{method} {target}");
            assert_eq!(e.message(), "Couldn't parse the specified URI.");
        }
    }
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
            let e = r(method.clone(), target, None).unwrap_err();
            assert_eq!(e.code, Code::InvalidBucketName, "{method} {target}");
        }
    }
    let e = route(
        &Method::DELETE,
        Some("b%2fk.s3.local"),
        "/",
        &Query::default(),
        None,
        Some("s3.local"),
    )
    .unwrap_err();
    assert_eq!(e.code, Code::InvalidBucketName);
    assert_eq!(r(Method::GET, "/my-b.1/k", None).unwrap().bucket, "my-b.1");
}

#[test]
fn virtual_hosted_style() {
    let q = Query::default();
    let route = route(
        &Method::GET,
        Some("site.s3.local:9000"),
        "/a/b",
        &q,
        None,
        Some("s3.local"),
    )
    .unwrap();
    assert_eq!((route.bucket.as_str(), route.key.as_str()), ("site", "a/b"));
    let route = super::route(
        &Method::GET,
        Some("s3.local"),
        "/site/a",
        &q,
        None,
        Some("s3.local"),
    )
    .unwrap();
    assert_eq!((route.bucket.as_str(), route.key.as_str()), ("site", "a"));
}

#[test]
fn a_form_upload_is_a_post_to_the_bucket_in_either_style() {
    let hosted = route(
        &Method::POST,
        Some("site.s3.local:9000"),
        "/",
        &Query::default(),
        None,
        Some("s3.local"),
    )
    .unwrap();
    assert_eq!(hosted.endpoint, PostObject);
    assert_eq!((hosted.bucket.as_str(), hosted.key.as_str()), ("site", ""));
    assert!(PostObject.authenticates_itself());
    assert!(!PutObject.authenticates_itself());
    // A POST to an object is still no operation.
    assert_eq!(err(Method::POST, "/b/k").code, Code::NotImplemented);
}

#[test]
fn query_decoding() {
    let q = Query::parse(Some("prefix=a%2Fb&delimiter=%2F&uploads"));
    assert_eq!(q.get("prefix"), Some("a/b"));
    assert_eq!(q.get("delimiter"), Some("/"));
    assert!(q.has("uploads"));
}
