//! ListObjects: prefix, delimiter, start-after, UTF-8 byte order, seeking past groups.

use super::*;
use crate::engine::codec;

async fn list(
    engine: &Engine,
    prefix: &str,
    delimiter: Option<&str>,
    after: Option<&str>,
    max: usize,
) -> ListPage {
    engine
        .list_objects(
            "b",
            ListQuery {
                prefix: prefix.into(),
                delimiter: delimiter.map(Into::into),
                start_after: after.map(Into::into),
                max_keys: max,
            },
        )
        .await
        .unwrap()
}

fn keys(page: &ListPage) -> Vec<&str> {
    page.objects.iter().map(|o| o.key.as_str()).collect()
}

#[tokio::test]
async fn list_prefix_delimiter_start_after() {
    let (_dir, engine) = setup().await;
    engine
        .create_bucket("other", BucketSettings::default())
        .await
        .unwrap();
    engine
        .put_object("other", "a0", PutOptions::default(), body(b"x"), ok())
        .await
        .unwrap();
    for k in ["a", "a/b", "a/b/c", "a/c", "b", "c/d/e"] {
        put(&engine, k, k.as_bytes()).await.unwrap();
    }
    let all = list(&engine, "", None, None, 100).await;
    assert_eq!(keys(&all), ["a", "a/b", "a/b/c", "a/c", "b", "c/d/e"]);
    assert!(!all.is_truncated);
    assert_eq!(all.next_marker.as_deref(), Some("c/d/e"));
    assert_eq!(all.objects[0].size, 1);

    let top = list(&engine, "", Some("/"), None, 100).await;
    assert_eq!(keys(&top), ["a", "b"]);
    assert_eq!(top.common_prefixes, ["a/", "c/"]);

    let sub = list(&engine, "a/", Some("/"), None, 100).await;
    assert_eq!(keys(&sub), ["a/b", "a/c"]);
    assert_eq!(sub.common_prefixes, ["a/b/"]);

    let pre = list(&engine, "a", None, None, 100).await;
    assert_eq!(keys(&pre), ["a", "a/b", "a/b/c", "a/c"]);

    // start_after inside a group: that group was already returned.
    let after = list(&engine, "", Some("/"), Some("a/b"), 100).await;
    assert_eq!(keys(&after), ["b"]);
    assert_eq!(after.common_prefixes, ["c/"]);
    // start_after before the prefix is ignored.
    assert_eq!(keys(&list(&engine, "b", None, Some("a"), 100).await), ["b"]);

    // Pagination with the marker visits every entry once; the last page is not truncated.
    for max in 1..=4 {
        let mut seen = Vec::new();
        let mut marker: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = list(&engine, "", Some("/"), marker.as_deref(), max).await;
            pages += 1;
            assert!(page.objects.len() + page.common_prefixes.len() <= max);
            let mut entries: Vec<String> = keys(&page).iter().map(|s| s.to_string()).collect();
            entries.extend(page.common_prefixes.iter().cloned());
            entries.sort();
            seen.extend(entries);
            if !page.is_truncated {
                assert_eq!(page.next_marker.as_deref(), Some("c/"));
                break;
            }
            marker = page.next_marker.clone();
        }
        assert_eq!(seen, ["a", "a/", "b", "c/"], "max {max}");
        assert_eq!(pages, 4usize.div_ceil(max), "max {max}");
    }
    let page = list(&engine, "", None, None, 0).await;
    assert!(page.objects.is_empty() && !page.is_truncated);
    assert_eq!(
        kind(engine.list_objects("nope", ListQuery::default()).await),
        Kind::NotFound(What::Bucket)
    );
}

#[tokio::test]
async fn list_is_utf8_byte_order() {
    let (_dir, engine) = setup().await;
    let mut names = vec![
        "z",
        "é",
        "日本",
        "a",
        "\u{10000}",
        "Z",
        "e\u{301}",
        "\u{FFFF}",
        "~",
    ];
    for k in &names {
        put(&engine, k, b"x").await.unwrap();
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(keys(&list(&engine, "", None, None, 100).await), names);
    // Non-ASCII delimiter and groups.
    for k in ["x→1→a", "x→1→b", "x→2", "x→"] {
        put(&engine, k, b"x").await.unwrap();
    }
    let page = list(&engine, "x→", Some("→"), None, 100).await;
    assert_eq!(keys(&page), ["x→", "x→2"]);
    assert_eq!(page.common_prefixes, ["x→1→"]);
}

#[tokio::test]
async fn delimiter_listing_seeks_past_groups() {
    let (_dir, engine) = setup().await;
    // Write 20k rows directly: going through put_object would spend the time in fsyncs.
    engine
        .inner
        .index
        .write(|txn| {
            let mut t = txn.open_table(OBJECTS)?;
            let rec = codec::encode(&ObjectRecord {
                size: 1,
                etag: "e".into(),
                ..Default::default()
            })?;
            for i in 0..20_000 {
                let key = format!("dir{}/file{i:05}", i % 10);
                t.insert(("b", key.as_str()), rec.as_slice())?;
            }
            for i in 0..5 {
                t.insert(("b", format!("top{i}").as_str()), rec.as_slice())?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let q = ListQuery {
        delimiter: Some("/".into()),
        max_keys: 1000,
        ..Default::default()
    };
    let (page, scanned) = crate::engine::objects::list(&engine.inner, "b", q)
        .await
        .unwrap();
    assert_eq!(page.common_prefixes.len(), 10);
    assert_eq!(page.objects.len(), 5);
    assert!(!page.is_truncated);
    assert!(scanned <= 20, "scanned {scanned} entries");

    let q = ListQuery {
        prefix: "dir3/".into(),
        delimiter: Some("/".into()),
        max_keys: 10,
        ..Default::default()
    };
    let (page, scanned) = crate::engine::objects::list(&engine.inner, "b", q)
        .await
        .unwrap();
    assert_eq!(page.objects[0].key, "dir3/file00003");
    assert!(page.is_truncated);
    assert_eq!(page.next_marker.as_deref(), Some("dir3/file00093"));
    assert!(scanned <= 12);
}
