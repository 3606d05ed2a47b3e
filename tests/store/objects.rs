//! Object operations: PutObject/GetObject/HeadObject/DeleteObject, DeleteObjects, CopyObject,
//! GetObjectAttributes, metadata headers and their limits, odd keys (path traversal), the
//! object-size limit.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{
    Delete, MetadataDirective, ObjectAttributes, ObjectIdentifier, StorageClass,
};

use crate::common::raw::Payload;
use crate::common::*;

#[tokio::test]
async fn put_get_head_delete_round_trip() {
    let (store, s3, b) = TestStore::with_bucket("rt").await;
    let data = random_bytes(100_000, 1);

    let put = s3
        .put_object()
        .bucket(&b)
        .key("dir/obj.bin")
        .body(body(data.clone()))
        .send()
        .await
        .expect("put");
    assert_eq!(
        put.e_tag(),
        Some(etag_of(&data).as_str()),
        "ETag is the hex MD5"
    );

    let get = s3
        .get_object()
        .bucket(&b)
        .key("dir/obj.bin")
        .send()
        .await
        .expect("get");
    assert_eq!(get.e_tag(), Some(etag_of(&data).as_str()));
    assert_eq!(get.content_length(), Some(data.len() as i64));
    assert!(get.last_modified().is_some());
    assert_eq!(read_body(get.body).await, data);

    let head = s3
        .head_object()
        .bucket(&b)
        .key("dir/obj.bin")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_length(), Some(data.len() as i64));
    assert_eq!(head.e_tag(), Some(etag_of(&data).as_str()));

    // Overwrite: strong read-after-write.
    let v2 = random_bytes(1234, 2);
    put_bytes(&s3, &b, "dir/obj.bin", v2.clone()).await;
    let get = s3
        .get_object()
        .bucket(&b)
        .key("dir/obj.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(
        read_body(get.body).await,
        v2,
        "read-after-overwrite returns the new body"
    );

    s3.delete_object()
        .bucket(&b)
        .key("dir/obj.bin")
        .send()
        .await
        .expect("delete");
    assert_sdk_err(
        s3.get_object().bucket(&b).key("dir/obj.bin").send().await,
        404,
        "NoSuchKey",
    );
    assert_sdk_err(
        s3.head_object().bucket(&b).key("dir/obj.bin").send().await,
        404,
        "NotFound",
    );
    // Deleting a missing key is a success (204), as on S3.
    let r = RawRequest::new("DELETE", &format!("/{b}/never-existed"))
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
}

#[tokio::test]
async fn empty_object_and_no_such_key_error_shape() {
    let (store, s3, b) = TestStore::with_bucket("empty").await;
    put_bytes(&s3, &b, "empty", Vec::new()).await;
    let get = s3
        .get_object()
        .bucket(&b)
        .key("empty")
        .send()
        .await
        .unwrap();
    assert_eq!(get.e_tag(), Some("\"d41d8cd98f00b204e9800998ecf8427e\""));
    assert_eq!(get.content_length(), Some(0));
    assert!(read_body(get.body).await.is_empty());

    let r = RawRequest::new("GET", &format!("/{b}/nope/x.txt"))
        .sign(&store)
        .send(&store)
        .await;
    r.assert_error(404, "NoSuchKey");
    let resource = r.xml("Resource").unwrap();
    assert!(
        resource.contains("nope/x.txt"),
        "Resource names the key: {resource}"
    );
    assert_eq!(
        r.xml("Key").as_deref().unwrap_or("nope/x.txt"),
        "nope/x.txt"
    );
    // Successful responses carry x-amz-request-id too.
    let r = RawRequest::new("GET", &format!("/{b}/empty"))
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("x-amz-request-id").is_some_and(|v| !v.is_empty()),
        "x-amz-request-id on success"
    );
}

#[tokio::test]
async fn metadata_headers_round_trip() {
    let (_store, s3, b) = TestStore::with_bucket("meta").await;
    let expires = DateTime::from_secs(2_000_000_000);
    s3.put_object()
        .bucket(&b)
        .key("m")
        .body(body("gzipped-ish"))
        .content_type("application/x-test")
        .content_encoding("gzip")
        .content_disposition("attachment; filename=\"x.bin\"")
        .content_language("de-DE")
        .cache_control("max-age=60, public")
        .expires(expires)
        .metadata("color", "blue")
        .metadata("Mixed-Case", "Value With Spaces")
        .storage_class(StorageClass::Standard)
        .website_redirect_location("/other/page.html")
        .send()
        .await
        .expect("put with metadata");

    let h = s3.head_object().bucket(&b).key("m").send().await.unwrap();
    assert_eq!(h.content_type(), Some("application/x-test"));
    assert_eq!(h.content_encoding(), Some("gzip"));
    assert_eq!(
        h.content_disposition(),
        Some("attachment; filename=\"x.bin\"")
    );
    assert_eq!(h.content_language(), Some("de-DE"));
    assert_eq!(h.cache_control(), Some("max-age=60, public"));
    assert_eq!(h.expires_string(), Some("Wed, 18 May 2033 03:33:20 GMT"));
    assert_eq!(h.website_redirect_location(), Some("/other/page.html"));
    let meta = h.metadata().expect("user metadata");
    assert_eq!(meta.get("color").map(String::as_str), Some("blue"));
    assert_eq!(
        meta.get("mixed-case").map(String::as_str),
        Some("Value With Spaces"),
        "metadata names are lower-cased: {meta:?}"
    );
    assert!(matches!(
        h.storage_class(),
        None | Some(StorageClass::Standard)
    ));

    // GET returns the same headers.
    let g = s3.get_object().bucket(&b).key("m").send().await.unwrap();
    assert_eq!(g.content_type(), Some("application/x-test"));
    assert_eq!(g.cache_control(), Some("max-age=60, public"));
    assert_eq!(
        g.metadata().unwrap().get("color").map(String::as_str),
        Some("blue")
    );
    assert_eq!(g.website_redirect_location(), Some("/other/page.html"));

    // No explicit type: a default, never empty.
    put_bytes(&s3, &b, "plain", "x").await;
    let h = s3
        .head_object()
        .bucket(&b)
        .key("plain")
        .send()
        .await
        .unwrap();
    assert!(
        h.content_type().is_some_and(|t| !t.is_empty()),
        "default Content-Type"
    );
}

#[tokio::test]
async fn user_metadata_over_2_kib_is_metadata_too_large() {
    let (_store, s3, b) = TestStore::with_bucket("bigmeta").await;
    // Under the limit passes (2 KiB counts the UTF-8 bytes of names and values).
    let fits = "v".repeat(1900);
    s3.put_object()
        .bucket(&b)
        .key("ok")
        .metadata("k", &fits)
        .body(body("x"))
        .send()
        .await
        .expect("1.9 KB of metadata fits");
    let over = "v".repeat(2100);
    let r = s3
        .put_object()
        .bucket(&b)
        .key("big")
        .metadata("k", &over)
        .body(body("x"))
        .send()
        .await;
    assert_sdk_err(r, 400, "MetadataTooLarge");
    assert_sdk_err(
        s3.head_object().bucket(&b).key("big").send().await,
        404,
        "NotFound",
    );
    // Many small entries add up.
    let mut req = s3.put_object().bucket(&b).key("many").body(body("x"));
    for i in 0..40 {
        req = req.metadata(format!("key{i:02}"), "x".repeat(50));
    }
    assert_sdk_err(req.send().await, 400, "MetadataTooLarge");
}

/// Decodes an RFC 2047 encoded-word (`=?UTF-8?B?...?=` or `=?UTF-8?Q?...?=`), or returns the
/// value unchanged.
fn rfc2047_decode(v: &str) -> String {
    let Some(inner) = v.strip_prefix("=?").and_then(|s| s.strip_suffix("?=")) else {
        return v.to_string();
    };
    let mut parts = inner.splitn(3, '?');
    let (_charset, enc, text) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    match enc {
        "B" | "b" => String::from_utf8(hash::b64_decode(text)).unwrap(),
        _ => percent_decode(&text.replace('_', " ").replace('=', "%")),
    }
}

#[tokio::test]
async fn non_ascii_user_metadata() {
    let (store, s3, b) = TestStore::with_bucket("utf8meta").await;

    // A client that RFC 2047-encodes gets its value back unchanged.
    let encoded = "=?UTF-8?B?w6TDtsO8IOKCrA==?=";
    s3.put_object()
        .bucket(&b)
        .key("enc")
        .metadata("name", encoded)
        .body(body("x"))
        .send()
        .await
        .unwrap();
    let h = s3.head_object().bucket(&b).key("enc").send().await.unwrap();
    assert_eq!(
        h.metadata().unwrap().get("name").map(String::as_str),
        Some(encoded)
    );

    // Raw UTF-8 bytes in the header: stored, and returned either as sent or RFC 2047-encoded
    // (what AWS does); either way it decodes to the same text.
    let r = RawRequest::new("PUT", &format!("/{b}/raw"))
        .header("x-amz-meta-name", "äöü €")
        .body("x")
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "PUT with UTF-8 metadata: {}", r.text());
    let r = RawRequest::new("HEAD", &format!("/{b}/raw"))
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200);
    let v = r.header("x-amz-meta-name").expect("metadata returned");
    assert_eq!(rfc2047_decode(v), "äöü €", "returned value {v:?}");
}

#[tokio::test]
async fn content_encoding_never_keeps_aws_chunked() {
    let (store, s3, b) = TestStore::with_bucket("ce").await;
    let data = random_bytes(70_000, 3);

    let c = raw::Chunked {
        chunk_size: 16 * 1024,
        content_encoding: Some("gzip".into()),
        ..Default::default()
    };
    let r = raw::signed_chunked(
        &store,
        RawRequest::new("PUT", &format!("/{b}/gz")),
        &data,
        &c,
        &SignOpts::default(),
    )
    .send(&store)
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let h = s3.head_object().bucket(&b).key("gz").send().await.unwrap();
    assert_eq!(
        h.content_encoding(),
        Some("gzip"),
        "aws-chunked is stripped, gzip kept"
    );
    assert_eq!(
        h.content_length(),
        Some(data.len() as i64),
        "the stored length is the decoded length"
    );

    let c = raw::Chunked {
        chunk_size: 16 * 1024,
        ..Default::default()
    };
    let r = raw::signed_chunked(
        &store,
        RawRequest::new("PUT", &format!("/{b}/plain")),
        &data,
        &c,
        &SignOpts::default(),
    )
    .send(&store)
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = RawRequest::new("HEAD", &format!("/{b}/plain"))
        .sign(&store)
        .send(&store)
        .await;
    let ce = r.header("content-encoding").unwrap_or("");
    assert!(
        !ce.contains("aws-chunked"),
        "stored Content-Encoding must not contain aws-chunked: {ce:?}"
    );
    let got = object_bytes(&s3, &b, "plain").await;
    assert_eq!(got, data, "no aws-chunked framing inside the stored object");
}

#[tokio::test]
async fn delete_objects_quiet_and_verbose() {
    let (_store, s3, b) = TestStore::with_bucket("delobjs").await;
    for k in ["a", "b", "c", "d"] {
        put_bytes(&s3, &b, k, k).await;
    }
    let ids = |keys: &[&str]| {
        keys.iter()
            .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
            .collect::<Vec<_>>()
    };

    let out = s3
        .delete_objects()
        .bucket(&b)
        .delete(
            Delete::builder()
                .set_objects(Some(ids(&["a", "b", "missing"])))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("DeleteObjects");
    let mut deleted: Vec<_> = out.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort();
    assert_eq!(
        deleted,
        ["a", "b", "missing"],
        "a missing key counts as deleted"
    );
    assert!(out.errors().is_empty());

    let out = s3
        .delete_objects()
        .bucket(&b)
        .delete(
            Delete::builder()
                .set_objects(Some(ids(&["c"])))
                .quiet(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("quiet DeleteObjects");
    assert!(
        out.deleted().is_empty(),
        "quiet mode lists no successes: {:?}",
        out.deleted()
    );
    assert!(out.errors().is_empty());

    let list = s3.list_objects_v2().bucket(&b).send().await.unwrap();
    let keys: Vec<_> = list.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["d"]);
}

#[tokio::test]
async fn delete_objects_over_1000_keys_is_rejected() {
    let (_store, s3, b) = TestStore::with_bucket("del1001").await;
    put_bytes(&s3, &b, "k0", "x").await;
    let ids: Vec<_> = (0..1001)
        .map(|i| {
            ObjectIdentifier::builder()
                .key(format!("k{i}"))
                .build()
                .unwrap()
        })
        .collect();
    let (status, code) = sdk_err(
        s3.delete_objects()
            .bucket(&b)
            .delete(Delete::builder().set_objects(Some(ids)).build().unwrap())
            .send()
            .await,
    );
    assert_eq!(status, 400);
    // AWS answers MalformedXML here.
    assert_eq!(code, "MalformedXML", "DeleteObjects with 1001 keys");
    s3.head_object()
        .bucket(&b)
        .key("k0")
        .send()
        .await
        .expect("nothing was deleted");
}

#[tokio::test]
async fn delete_objects_with_crc32_checksum_and_no_content_md5() {
    let (store, s3, b) = TestStore::with_bucket("delcrc").await;
    for k in ["x/1", "x/2"] {
        put_bytes(&s3, &b, k, "v").await;
    }
    let xml = "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Object><Key>x/1</Key></Object><Object><Key>x/2</Key></Object><Quiet>true</Quiet></Delete>";
    let r = RawRequest::new("POST", &format!("/{b}?delete"))
        .header("x-amz-checksum-crc32", &raw::crc32_b64(xml.as_bytes()))
        .header("x-amz-sdk-checksum-algorithm", "CRC32")
        .header("content-type", "application/xml")
        .body(xml)
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(
        r.status,
        200,
        "DeleteObjects with x-amz-checksum-crc32 only: {}",
        r.text()
    );
    assert!(r.xml_all("Error").is_empty(), "{}", r.text());
    let list = s3.list_objects_v2().bucket(&b).send().await.unwrap();
    assert_eq!(list.key_count(), Some(0));

    // A wrong checksum is refused and deletes nothing.
    put_bytes(&s3, &b, "x/3", "v").await;
    let xml = "<Delete><Object><Key>x/3</Key></Object></Delete>";
    let r = RawRequest::new("POST", &format!("/{b}?delete"))
        .header("x-amz-checksum-crc32", &raw::crc32_b64(b"something else"))
        .body(xml)
        .sign(&store)
        .send(&store)
        .await;
    r.assert_error(400, "BadDigest");
    s3.head_object()
        .bucket(&b)
        .key("x/3")
        .send()
        .await
        .expect("x/3 survives a bad-checksum DeleteObjects");

    // Malformed XML.
    let r = RawRequest::new("POST", &format!("/{b}?delete"))
        .header(
            "content-md5",
            &hash::b64(&hash::md5(b"<Delete><Object><Key>x/3")),
        )
        .body("<Delete><Object><Key>x/3")
        .sign(&store)
        .send(&store)
        .await;
    r.assert_error(400, "MalformedXML");
    s3.head_object()
        .bucket(&b)
        .key("x/3")
        .send()
        .await
        .expect("x/3 survives malformed XML");
}

#[tokio::test]
async fn copy_object_with_copy_and_replace_directives() {
    let (store, s3, b) = TestStore::with_bucket("copy").await;
    let dst_bucket = store.bucket(&s3, "copydst").await;
    let data = random_bytes(50_000, 4);
    s3.put_object()
        .bucket(&b)
        .key("src")
        .body(body(data.clone()))
        .content_type("text/x-src")
        .cache_control("no-cache")
        .metadata("origin", "source")
        .send()
        .await
        .unwrap();

    // Default directive is COPY: metadata and headers travel with the bytes, across buckets too.
    let out = s3
        .copy_object()
        .bucket(&dst_bucket)
        .key("copied")
        .copy_source(format!("{b}/src"))
        .send()
        .await
        .expect("copy");
    assert_eq!(
        out.copy_object_result().and_then(|r| r.e_tag()),
        Some(etag_of(&data).as_str())
    );
    let h = s3
        .head_object()
        .bucket(&dst_bucket)
        .key("copied")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("text/x-src"));
    assert_eq!(h.cache_control(), Some("no-cache"));
    assert_eq!(
        h.metadata().unwrap().get("origin").map(String::as_str),
        Some("source")
    );
    let got = object_bytes(&s3, &dst_bucket, "copied").await;
    assert_eq!(got, data);

    // Explicit COPY ignores new metadata given in the request.
    s3.copy_object()
        .bucket(&b)
        .key("copy2")
        .copy_source(format!("{b}/src"))
        .metadata_directive(MetadataDirective::Copy)
        .metadata("origin", "ignored")
        .send()
        .await
        .unwrap();
    let h = s3
        .head_object()
        .bucket(&b)
        .key("copy2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        h.metadata().unwrap().get("origin").map(String::as_str),
        Some("source")
    );

    // REPLACE takes the request's metadata and headers.
    s3.copy_object()
        .bucket(&b)
        .key("replaced")
        .copy_source(format!("{b}/src"))
        .metadata_directive(MetadataDirective::Replace)
        .content_type("application/x-new")
        .metadata("origin", "replaced")
        .send()
        .await
        .unwrap();
    let h = s3
        .head_object()
        .bucket(&b)
        .key("replaced")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("application/x-new"));
    assert_eq!(h.cache_control(), None, "REPLACE drops headers not given");
    assert_eq!(
        h.metadata().unwrap().get("origin").map(String::as_str),
        Some("replaced")
    );
    assert_eq!(h.e_tag(), Some(etag_of(&data).as_str()));

    // Source object deleted after copy: the copy is independent.
    s3.delete_object()
        .bucket(&b)
        .key("src")
        .send()
        .await
        .unwrap();
    let got = object_bytes(&s3, &dst_bucket, "copied").await;
    assert_eq!(got, data, "copy survives deletion of its source");

    assert_sdk_err(
        s3.copy_object()
            .bucket(&b)
            .key("x")
            .copy_source(format!("{b}/src"))
            .send()
            .await,
        404,
        "NoSuchKey",
    );
}

#[tokio::test]
async fn copy_source_url_encoded_with_special_characters() {
    let (store, s3, b) = TestStore::with_bucket("copyenc").await;
    let key = "dir with space/ä ö+plus&amp=eq?q#hash%pct~tilde.txt";
    let data = b"special".to_vec();
    put_bytes(&s3, &b, key, data.clone()).await;

    s3.copy_object()
        .bucket(&b)
        .key("dst/1")
        .copy_source(format!("{b}/{}", enc_path(key)))
        .send()
        .await
        .expect("copy with URL-encoded source");
    let got = object_bytes(&s3, &b, "dst/1").await;
    assert_eq!(got, data);

    // A leading slash in x-amz-copy-source is allowed, as is a fully encoded source.
    let r = RawRequest::new("PUT", &format!("/{b}/dst/2"))
        .header("x-amz-copy-source", &format!("/{b}/{}", enc_path(key)))
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.xml("ETag").as_deref(), Some(etag_of(&data).as_str()));
    let got = object_bytes(&s3, &b, "dst/2").await;
    assert_eq!(got, data);
}

#[tokio::test]
async fn copy_source_conditionals() {
    let (_store, s3, b) = TestStore::with_bucket("copycond").await;
    put_bytes(&s3, &b, "src", "data").await;
    let etag = etag_of(b"data");
    let past = DateTime::from(SystemTime::now() - Duration::from_secs(3600));
    let future = DateTime::from(SystemTime::now() + Duration::from_secs(3600));
    let src = format!("{b}/src");

    // Passing conditions copy.
    s3.copy_object()
        .bucket(&b)
        .key("ok1")
        .copy_source(&src)
        .copy_source_if_match(&etag)
        .send()
        .await
        .expect("if-match right");
    s3.copy_object()
        .bucket(&b)
        .key("ok2")
        .copy_source(&src)
        .copy_source_if_none_match("\"other\"")
        .send()
        .await
        .expect("if-none-match other");
    s3.copy_object()
        .bucket(&b)
        .key("ok3")
        .copy_source(&src)
        .copy_source_if_modified_since(past)
        .send()
        .await
        .expect("modified since past");
    s3.copy_object()
        .bucket(&b)
        .key("ok4")
        .copy_source(&src)
        .copy_source_if_unmodified_since(future)
        .send()
        .await
        .expect("unmodified since future");

    // Failing conditions: 412 and no object.
    let fails = [
        (
            "f1",
            s3.copy_object()
                .bucket(&b)
                .key("f1")
                .copy_source(&src)
                .copy_source_if_match("\"nope\"")
                .send()
                .await,
        ),
        (
            "f2",
            s3.copy_object()
                .bucket(&b)
                .key("f2")
                .copy_source(&src)
                .copy_source_if_none_match(&etag)
                .send()
                .await,
        ),
        (
            "f3",
            s3.copy_object()
                .bucket(&b)
                .key("f3")
                .copy_source(&src)
                .copy_source_if_modified_since(future)
                .send()
                .await,
        ),
        (
            "f4",
            s3.copy_object()
                .bucket(&b)
                .key("f4")
                .copy_source(&src)
                .copy_source_if_unmodified_since(past)
                .send()
                .await,
        ),
    ];
    for (key, result) in fails {
        assert_sdk_err(result, 412, "PreconditionFailed");
        assert_sdk_err(
            s3.head_object().bucket(&b).key(key).send().await,
            404,
            "NotFound",
        );
    }
}

#[tokio::test]
async fn copy_onto_itself_requires_replace() {
    let (_store, s3, b) = TestStore::with_bucket("selfcopy").await;
    let data = random_bytes(10_000, 5);
    s3.put_object()
        .bucket(&b)
        .key("me")
        .body(body(data.clone()))
        .metadata("v", "1")
        .content_type("text/old")
        .send()
        .await
        .unwrap();

    let (status, code) = sdk_err(
        s3.copy_object()
            .bucket(&b)
            .key("me")
            .copy_source(format!("{b}/me"))
            .send()
            .await,
    );
    assert_eq!(
        (status, code.as_str()),
        (400, "InvalidRequest"),
        "copy onto itself without changes"
    );

    s3.copy_object()
        .bucket(&b)
        .key("me")
        .copy_source(format!("{b}/me"))
        .metadata_directive(MetadataDirective::Replace)
        .metadata("v", "2")
        .content_type("text/new")
        .send()
        .await
        .expect("self-copy with REPLACE updates metadata");
    let g = s3.get_object().bucket(&b).key("me").send().await.unwrap();
    assert_eq!(g.content_type(), Some("text/new"));
    assert_eq!(
        g.metadata().unwrap().get("v").map(String::as_str),
        Some("2")
    );
    assert_eq!(read_body(g.body).await, data, "self-copy keeps the bytes");
}

#[tokio::test]
async fn get_object_attributes() {
    let (_store, s3, b) = TestStore::with_bucket("attrs").await;
    let data = random_bytes(3000, 6);
    s3.put_object()
        .bucket(&b)
        .key("o")
        .body(body(data.clone()))
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    let out = s3
        .get_object_attributes()
        .bucket(&b)
        .key("o")
        .object_attributes(ObjectAttributes::Etag)
        .object_attributes(ObjectAttributes::ObjectSize)
        .object_attributes(ObjectAttributes::StorageClass)
        .object_attributes(ObjectAttributes::Checksum)
        .send()
        .await
        .expect("GetObjectAttributes");
    assert_eq!(
        out.e_tag(),
        Some(hash::md5_hex(&data).as_str()),
        "ETag without quotes, as S3 returns it"
    );
    assert_eq!(out.object_size(), Some(data.len() as i64));
    assert_eq!(out.storage_class(), Some(&StorageClass::Standard));
    assert_eq!(
        out.checksum().and_then(|c| c.checksum_sha256()),
        Some(Algo::Sha256.b64(&data).as_str())
    );
    assert!(out.last_modified().is_some());

    // Only what was asked for.
    let out = s3
        .get_object_attributes()
        .bucket(&b)
        .key("o")
        .object_attributes(ObjectAttributes::ObjectSize)
        .send()
        .await
        .unwrap();
    assert_eq!(out.object_size(), Some(data.len() as i64));
    assert_eq!(out.e_tag(), None);

    assert_sdk_err(
        s3.get_object_attributes()
            .bucket(&b)
            .key("missing")
            .object_attributes(ObjectAttributes::Etag)
            .send()
            .await,
        404,
        "NoSuchKey",
    );
}

#[tokio::test]
async fn path_traversal_and_odd_keys_stay_inside_the_store() {
    let (store, s3, b) = TestStore::with_bucket("trav").await;
    let keys = [
        "../../etc/passwd",
        "../../../../../../../../tmp/outpost-escape",
        "..",
        ".",
        "./x",
        "a/../b",
        "a//b",
        "//leading",
        "trailing/",
        "back\\slash\\..\\..\\x",
        "%2e%2e/literal-percent",
    ];
    for (i, k) in keys.iter().enumerate() {
        s3.put_object()
            .bucket(&b)
            .key(*k)
            .body(body(format!("body {i}")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {k:?}: {e:?}"));
    }
    for (i, k) in keys.iter().enumerate() {
        let got = s3
            .get_object()
            .bucket(&b)
            .key(*k)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {k:?}: {e:?}"));
        assert_eq!(
            read_body(got.body).await,
            format!("body {i}").into_bytes(),
            "key {k:?}"
        );
    }
    let list = s3.list_objects_v2().bucket(&b).send().await.unwrap();
    let mut listed: Vec<_> = list
        .contents()
        .iter()
        .map(|o| o.key().unwrap().to_string())
        .collect();
    let mut want: Vec<_> = keys.iter().map(|k| k.to_string()).collect();
    want.sort();
    listed.sort();
    assert_eq!(listed, want, "every odd key is listed verbatim");

    // Raw requests with the dots on the wire, unencoded and percent-encoded.
    let r = RawRequest::new("PUT", &format!("/{b}/../../etc/raw-escape"))
        .body("raw")
        .sign(&store)
        .send(&store)
        .await;
    assert!(
        r.status == 200 || r.status == 400,
        "raw ../ PUT: {} {}",
        r.status,
        r.text()
    );
    if r.status == 200 {
        // Taken literally as a key inside the bucket.
        let got = s3
            .get_object()
            .bucket(&b)
            .key("../../etc/raw-escape")
            .send()
            .await
            .expect("literal key");
        assert_eq!(read_body(got.body).await, b"raw");
    }
    let r = RawRequest::new("PUT", &format!("/{b}/%2E%2E/%2E%2E/enc-escape"))
        .body("enc")
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = s3
        .get_object()
        .bucket(&b)
        .key("../../enc-escape")
        .send()
        .await
        .expect("percent-encoded dots are a literal key");
    assert_eq!(read_body(got.body).await, b"enc");
    let r = RawRequest::new(
        "GET",
        &format!("/{b}/..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd"),
    )
    .sign(&store)
    .send(&store)
    .await;
    assert_eq!(r.status, 404, "no file outside the store is served");

    // Nothing was written outside the data directory: the temp dir holds only data/.
    let outside: Vec<_> = std::fs::read_dir(store.tmp_path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "data")
        .collect();
    assert!(
        outside.is_empty(),
        "files escaped the data dir: {outside:?}"
    );
    assert!(!std::path::Path::new("/tmp/outpost-escape").exists());
    assert!(!std::path::Path::new("/etc/raw-escape").exists());
}

#[tokio::test]
async fn object_size_limit_is_entity_too_large() {
    let store =
        TestStore::start_with(StoreOptions::default().env("OUTPOST_MAX_OBJECT_SIZE", "1024"));
    let s3 = store.client();
    let b = store.bucket(&s3, "limit").await;
    s3.put_object()
        .bucket(&b)
        .key("fits")
        .body(body(vec![7u8; 1024]))
        .send()
        .await
        .expect("exactly the limit fits");
    let r = s3
        .put_object()
        .bucket(&b)
        .key("big")
        .body(body(vec![7u8; 2000]))
        .send()
        .await;
    assert_sdk_err(r, 400, "EntityTooLarge");
    assert_sdk_err(
        s3.head_object().bucket(&b).key("big").send().await,
        404,
        "NotFound",
    );

    // Without Content-Length (chunked transfer) the limit still holds.
    let r = RawRequest::new("PUT", &format!("/{b}/big-chunked"))
        .chunked_body(vec![vec![1u8; 800], vec![2u8; 800]])
        .sign_with(&store, &SignOpts::default().payload(Payload::Unsigned))
        .0
        .send(&store)
        .await;
    r.assert_error(400, "EntityTooLarge");
    assert_sdk_err(
        s3.head_object().bucket(&b).key("big-chunked").send().await,
        404,
        "NotFound",
    );

    // A multipart part over the limit too.
    let up = s3
        .create_multipart_upload()
        .bucket(&b)
        .key("mp")
        .send()
        .await
        .unwrap();
    let r = s3
        .upload_part()
        .bucket(&b)
        .key("mp")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .body(body(vec![0u8; 2000]))
        .send()
        .await;
    assert_sdk_err(r, 400, "EntityTooLarge");
}
