//! Listing: ListObjectsV2 (prefix, delimiter, max-keys, continuation, start-after, fetch-owner,
//! encoding-type=url), ListObjects v1 (marker, NextMarker), ListObjectVersions, UTF-8 binary order,
//! keys that would collide as file paths, key-length limits.

use aws_sdk_s3::Client;
use aws_sdk_s3::types::EncodingType;

use crate::common::*;

const KEYS: &[&str] = &[
    "a",
    "a/b",
    "a/c/d",
    "a/c/e",
    "a//b",
    "a-b",
    "b/",
    "b/x",
    "c",
    "z",
    "~tilde",
    "é",
    "中文/文件",
    "\u{1F600}emoji",
    "Z-upper",
    "0-digit",
];

async fn put_keys(s3: &Client, b: &str, keys: &[&str]) {
    let mut tasks = Vec::new();
    for k in keys {
        let (s3, b, k) = (s3.clone(), b.to_string(), k.to_string());
        tasks.push(tokio::spawn(async move {
            s3.put_object()
                .bucket(&b)
                .key(&k)
                .body(body(k.clone()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("put {k:?}: {e:?}"));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn utf8_sorted(keys: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
    v.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    v
}

async fn list_v2_all(
    s3: &Client,
    b: &str,
    prefix: Option<&str>,
    delimiter: Option<&str>,
    max_keys: i32,
) -> (Vec<String>, Vec<String>, usize) {
    let mut keys = Vec::new();
    let mut prefixes = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = s3
            .list_objects_v2()
            .bucket(b)
            .set_prefix(prefix.map(String::from))
            .set_delimiter(delimiter.map(String::from))
            .max_keys(max_keys)
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("ListObjectsV2 page");
        pages += 1;
        let n = out.contents().len() + out.common_prefixes().len();
        assert!(
            n <= max_keys as usize,
            "page has {n} entries, max-keys {max_keys}"
        );
        assert_eq!(
            out.key_count(),
            Some(n as i32),
            "KeyCount counts keys and prefixes"
        );
        assert_eq!(
            out.continuation_token(),
            token.as_deref(),
            "ContinuationToken echoed"
        );
        keys.extend(out.contents().iter().map(|o| o.key().unwrap().to_string()));
        prefixes.extend(
            out.common_prefixes()
                .iter()
                .map(|p| p.prefix().unwrap().to_string()),
        );
        if out.is_truncated() == Some(true) {
            token = Some(
                out.next_continuation_token()
                    .expect("NextContinuationToken when truncated")
                    .to_string(),
            );
        } else {
            assert!(out.next_continuation_token().is_none());
            break;
        }
        assert!(pages < 1000, "pagination does not terminate");
    }
    (keys, prefixes, pages)
}

#[tokio::test]
async fn list_v2_full_listing_is_in_utf8_binary_order() {
    let (_store, s3, b) = TestStore::with_bucket("order").await;
    put_keys(&s3, &b, KEYS).await;

    let out = s3.list_objects_v2().bucket(&b).send().await.unwrap();
    let keys: Vec<_> = out
        .contents()
        .iter()
        .map(|o| o.key().unwrap().to_string())
        .collect();
    assert_eq!(
        keys,
        utf8_sorted(KEYS),
        "UTF-8 binary order (`a` and `a/b` both objects)"
    );
    assert_eq!(out.key_count(), Some(KEYS.len() as i32));
    assert_eq!(out.is_truncated(), Some(false));
    assert_eq!(out.name(), Some(b.as_str()));
    for o in out.contents() {
        let k = o.key().unwrap();
        assert_eq!(o.size(), Some(k.len() as i64), "size of {k:?}");
        assert_eq!(
            o.e_tag(),
            Some(etag_of(k.as_bytes()).as_str()),
            "etag of {k:?}"
        );
        assert!(o.last_modified().is_some());
        assert!(o.owner().is_none(), "no Owner without fetch-owner");
    }

    // `a` and `a/b` and `a//b` are all distinct objects with their own bodies.
    for k in ["a", "a/b", "a//b", "b/"] {
        let got = object_bytes(&s3, &b, k).await;
        assert_eq!(got, k.as_bytes(), "body of {k:?}");
    }
}

#[tokio::test]
async fn list_v2_prefix_and_delimiter() {
    let (_store, s3, b) = TestStore::with_bucket("delim").await;
    put_keys(&s3, &b, KEYS).await;

    let (keys, prefixes, _) = list_v2_all(&s3, &b, None, Some("/"), 1000).await;
    assert_eq!(prefixes, ["a/", "b/", "中文/"], "top-level CommonPrefixes");
    let want: Vec<String> = utf8_sorted(KEYS)
        .into_iter()
        .filter(|k| !k.contains('/'))
        .collect();
    assert_eq!(keys, want);

    let (keys, prefixes, _) = list_v2_all(&s3, &b, Some("a/"), Some("/"), 1000).await;
    assert_eq!(keys, ["a/b"]);
    assert_eq!(prefixes, ["a//", "a/c/"], "`a//b` rolls up under `a//`");

    let (keys, prefixes, _) = list_v2_all(&s3, &b, Some("b/"), Some("/"), 1000).await;
    assert_eq!(
        keys,
        ["b/", "b/x"],
        "a trailing-slash key is listed under its own prefix"
    );
    assert!(prefixes.is_empty());

    let (keys, _, _) = list_v2_all(&s3, &b, Some("a"), None, 1000).await;
    assert_eq!(keys, ["a", "a-b", "a//b", "a/b", "a/c/d", "a/c/e"]);

    // A delimiter other than '/'.
    let (keys, prefixes, _) = list_v2_all(&s3, &b, None, Some("-"), 1000).await;
    assert_eq!(prefixes, ["0-", "Z-", "a-"]);
    assert!(!keys.iter().any(|k| k.contains('-')));

    let out = s3
        .list_objects_v2()
        .bucket(&b)
        .prefix("nothing-here/")
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_count(), Some(0));
    assert!(out.contents().is_empty());

    // The delimiter and prefix are echoed.
    let out = s3
        .list_objects_v2()
        .bucket(&b)
        .prefix("a/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(out.prefix(), Some("a/"));
    assert_eq!(out.delimiter(), Some("/"));
}

#[tokio::test]
async fn list_v2_pagination_max_keys_continuation_start_after() {
    let (_store, s3, b) = TestStore::with_bucket("pages").await;
    put_keys(&s3, &b, KEYS).await;
    let all = utf8_sorted(KEYS);

    for max in [1, 2, 3, 7] {
        let (keys, _, pages) = list_v2_all(&s3, &b, None, None, max).await;
        assert_eq!(keys, all, "pages of {max}");
        assert_eq!(
            pages,
            all.len().div_ceil(max as usize),
            "number of pages of {max}"
        );
    }
    // Pagination with a delimiter: prefixes count against max-keys and are not repeated.
    let (keys, prefixes, _) = list_v2_all(&s3, &b, None, Some("/"), 2).await;
    assert_eq!(prefixes, ["a/", "b/", "中文/"]);
    assert_eq!(
        keys.len() + prefixes.len(),
        all.iter().filter(|k| !k.contains('/')).count() + 3
    );

    // start-after
    let out = s3
        .list_objects_v2()
        .bucket(&b)
        .start_after("a/c/d")
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = out
        .contents()
        .iter()
        .map(|o| o.key().unwrap().to_string())
        .collect();
    let want: Vec<_> = all
        .iter()
        .filter(|k| k.as_bytes() > "a/c/d".as_bytes())
        .cloned()
        .collect();
    assert_eq!(keys, want);
    assert_eq!(out.start_after(), Some("a/c/d"));
    let out = s3
        .list_objects_v2()
        .bucket(&b)
        .start_after("\u{10FFFF}")
        .send()
        .await
        .unwrap();
    assert!(out.contents().is_empty());

    // max-keys=0: nothing, truncated when there is more.
    let out = s3
        .list_objects_v2()
        .bucket(&b)
        .max_keys(0)
        .send()
        .await
        .unwrap();
    assert!(out.contents().is_empty());
    assert_eq!(out.key_count(), Some(0));
}

#[tokio::test]
async fn list_v2_default_page_is_1000_keys() {
    let (_store, s3, b) = TestStore::with_bucket("thousand").await;
    let keys: Vec<String> = (0..1100).map(|i| format!("k/{i:05}")).collect();
    let mut tasks = Vec::new();
    for chunk in keys.chunks(40) {
        let (s3, b, chunk) = (s3.clone(), b.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for k in chunk {
                put_bytes(&s3, &b, &k, Vec::new()).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let out = s3.list_objects_v2().bucket(&b).send().await.unwrap();
    assert_eq!(out.contents().len(), 1000, "default max-keys is 1000");
    assert_eq!(out.is_truncated(), Some(true));
    let out2 = s3
        .list_objects_v2()
        .bucket(&b)
        .continuation_token(out.next_continuation_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(out2.contents().len(), 100);
    assert_eq!(out2.contents()[0].key(), Some("k/01000"));
    // Asking for more than 1000 still caps at 1000.
    let out = s3
        .list_objects_v2()
        .bucket(&b)
        .max_keys(5000)
        .send()
        .await
        .unwrap();
    assert_eq!(out.contents().len(), 1000);
}

#[tokio::test]
async fn list_v2_fetch_owner() {
    let (_store, s3, b) = TestStore::with_bucket("owner").await;
    put_bytes(&s3, &b, "o", "x").await;
    let out = s3
        .list_objects_v2()
        .bucket(&b)
        .fetch_owner(true)
        .send()
        .await
        .unwrap();
    let owner = out.contents()[0]
        .owner()
        .expect("Owner with fetch-owner=true");
    assert!(owner.id().is_some_and(|id| !id.is_empty()), "Owner ID");
    let out = s3.list_objects_v2().bucket(&b).send().await.unwrap();
    assert!(out.contents()[0].owner().is_none());
    // v1 always includes the owner.
    let out = s3.list_objects().bucket(&b).send().await.unwrap();
    assert!(
        out.contents()[0].owner().is_some(),
        "ListObjects v1 includes Owner"
    );
}

#[tokio::test]
async fn list_encoding_type_url() {
    let (store, s3, b) = TestStore::with_bucket("urlenc").await;
    let keys = [
        "dir one/a b.txt",
        "dir one/ä&<>.txt",
        "plus+sign",
        // Control characters XML cannot carry are refused at write (tests/security/xml_keys.rs);
        // tab, LF and CR are allowed and URL-encoded here.
        "ctl\tline\nfeed",
    ];
    for k in keys {
        s3.put_object()
            .bucket(&b)
            .key(k)
            .body(body("x"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{k:?}: {e:?}"));
    }
    let r = RawRequest::new("GET", &format!("/{b}?list-type=2&encoding-type=url"))
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.xml("EncodingType").as_deref(), Some("url"));
    let raw_keys = r.xml_all("Key");
    assert!(
        raw_keys.iter().all(|k| !k.contains(' ')
            && !k.contains('<')
            && !k.contains('\t')
            && !k.contains('\n')),
        "keys are URL-encoded: {raw_keys:?}"
    );
    let decoded: Vec<String> = raw_keys.iter().map(|k| percent_decode(k)).collect();
    let mut want: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(decoded, want);

    // Prefix and delimiter results are encoded too.
    let r = RawRequest::new(
        "GET",
        &format!("/{b}?list-type=2&encoding-type=url&delimiter=%2F"),
    )
    .sign(&store)
    .send(&store)
    .await;
    assert_eq!(r.status, 200);
    let prefixes = r.xml_all("Prefix");
    assert!(
        prefixes
            .iter()
            .any(|p| percent_decode(p) == "dir one/" && !p.contains(' ')),
        "CommonPrefixes encoded: {prefixes:?}"
    );

    // The SDK asks for encoding-type=url too; with it, keys come back usable.
    let out = s3
        .list_objects_v2()
        .bucket(&b)
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(out.encoding_type(), Some(&EncodingType::Url));
    assert_eq!(out.contents().len(), keys.len());
}

#[tokio::test]
async fn list_v1_marker_and_next_marker() {
    let (_store, s3, b) = TestStore::with_bucket("v1").await;
    put_keys(&s3, &b, KEYS).await;
    let all = utf8_sorted(KEYS);

    // Without a delimiter: page with Marker = last key of the previous page.
    let mut marker: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let out = s3
            .list_objects()
            .bucket(&b)
            .max_keys(5)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.marker().filter(|m| !m.is_empty()),
            marker.as_deref(),
            "Marker echoed"
        );
        let page: Vec<String> = out
            .contents()
            .iter()
            .map(|o| o.key().unwrap().to_string())
            .collect();
        seen.extend(page.clone());
        if out.is_truncated() == Some(true) {
            marker = Some(
                out.next_marker()
                    .map(String::from)
                    .unwrap_or_else(|| page.last().unwrap().clone()),
            );
        } else {
            break;
        }
    }
    assert_eq!(seen, all);

    // With a delimiter, NextMarker is required when truncated (it may be a prefix).
    let mut marker: Option<String> = None;
    let mut keys = Vec::new();
    let mut prefixes = Vec::new();
    loop {
        let out = s3
            .list_objects()
            .bucket(&b)
            .delimiter("/")
            .max_keys(2)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        keys.extend(out.contents().iter().map(|o| o.key().unwrap().to_string()));
        prefixes.extend(
            out.common_prefixes()
                .iter()
                .map(|p| p.prefix().unwrap().to_string()),
        );
        if out.is_truncated() == Some(true) {
            marker = Some(
                out.next_marker()
                    .expect("NextMarker with a delimiter when truncated")
                    .to_string(),
            );
        } else {
            break;
        }
    }
    assert_eq!(prefixes, ["a/", "b/", "中文/"]);
    let want: Vec<String> = all.iter().filter(|k| !k.contains('/')).cloned().collect();
    assert_eq!(keys, want);
}

#[tokio::test]
async fn list_object_versions_on_unversioned_bucket() {
    let (_store, s3, b) = TestStore::with_bucket("versions").await;
    put_keys(&s3, &b, &["x", "y/1", "y/2"]).await;
    put_bytes(&s3, &b, "x", "overwritten").await;
    let out = s3
        .list_object_versions()
        .bucket(&b)
        .send()
        .await
        .expect("ListObjectVersions");
    let v: Vec<_> = out
        .versions()
        .iter()
        .map(|v| (v.key().unwrap(), v.version_id(), v.is_latest()))
        .collect();
    assert_eq!(
        v,
        [
            ("x", Some("null"), Some(true)),
            ("y/1", Some("null"), Some(true)),
            ("y/2", Some("null"), Some(true))
        ],
        "one `null` version per object, the latest"
    );
    assert_eq!(out.versions()[0].size(), Some(11));
    assert!(out.delete_markers().is_empty());
    let out = s3
        .list_object_versions()
        .bucket(&b)
        .prefix("y/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(out.versions().len(), 2);
    let out = s3
        .list_object_versions()
        .bucket(&b)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.common_prefixes()
            .iter()
            .map(|p| p.prefix().unwrap())
            .collect::<Vec<_>>(),
        ["y/"]
    );
    let out = s3
        .list_object_versions()
        .bucket(&b)
        .max_keys(1)
        .send()
        .await
        .unwrap();
    assert_eq!(out.versions().len(), 1);
    assert_eq!(out.is_truncated(), Some(true));
    assert_eq!(out.next_key_marker(), Some("x"));
}

#[tokio::test]
async fn key_length_limit_is_1024_bytes() {
    let (store, s3, b) = TestStore::with_bucket("keylen").await;
    let ascii_1024 = "k".repeat(1024);
    let utf8_1024 = "é".repeat(512); // 2 bytes each
    for k in [&ascii_1024, &utf8_1024] {
        s3.put_object()
            .bucket(&b)
            .key(k)
            .body(body("long"))
            .send()
            .await
            .expect("1024-byte key");
        let got = object_bytes(&s3, &b, k).await;
        assert_eq!(got, b"long");
    }
    let out = s3.list_objects_v2().bucket(&b).send().await.unwrap();
    let listed: Vec<_> = out
        .contents()
        .iter()
        .map(|o| o.key().unwrap().len())
        .collect();
    assert_eq!(listed, [1024, 1024]);

    let ascii_1025 = "k".repeat(1025);
    let utf8_1025 = format!("{}x", "é".repeat(512));
    for k in [&ascii_1025, &utf8_1025] {
        assert_sdk_err(
            s3.put_object()
                .bucket(&b)
                .key(k)
                .body(body("x"))
                .send()
                .await,
            400,
            "KeyTooLongError",
        );
    }
    let r = RawRequest::new("PUT", &format!("/{b}/{}", "q".repeat(1025)))
        .body("x")
        .sign(&store)
        .send(&store)
        .await;
    r.assert_error(400, "KeyTooLongError");
    // Multipart and copy destinations obey the same limit.
    assert_sdk_err(
        s3.create_multipart_upload()
            .bucket(&b)
            .key(&ascii_1025)
            .send()
            .await,
        400,
        "KeyTooLongError",
    );
    assert_sdk_err(
        s3.copy_object()
            .bucket(&b)
            .key(&ascii_1025)
            .copy_source(format!("{b}/{ascii_1024}"))
            .send()
            .await,
        400,
        "KeyTooLongError",
    );
}
