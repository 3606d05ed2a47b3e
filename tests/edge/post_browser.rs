//! A real browser form upload: headless Chromium (Debian's `chromium`) opens a page holding an
//! HTML `<form method=post enctype=multipart/form-data>` with the signed policy's fields and a
//! file input, whose script fills the input (a DataTransfer of a File) and submits the form, as
//! a user picking a file would. Chromium frames the body itself; the 201 PostResponse it lands
//! on is read back with `--dump-dom`, and the object is checked at the store. At the store and
//! through the edge. (On main: NotImplemented.)

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::common::form::{PostForm, basic_conditions};
use crate::common::*;

#[tokio::test]
async fn chromium_submits_a_form_upload_at_the_store_and_through_the_edge() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "browser").await;
    let mut conditions = basic_conditions(&b, "");
    conditions[1] = json!(["starts-with", "$key", "from-browser/"]);
    conditions.push(json!({"success_action_status": "201"}));
    conditions.push(json!({"x-amz-meta-via": "chromium"}));
    for (server, name) in [(&pair.store, "store"), (&pair.edge, "edge")] {
        let form = PostForm::new(&[
            ("key", "from-browser/${filename}"),
            ("Content-Type", "text/plain"),
            ("success_action_status", "201"),
            ("x-amz-meta-via", "chromium"),
        ])
        .signed_for_hour(&conditions);
        let filename = format!("picked-at-{name}.txt");
        let content = format!("hello from chromium via the {name}\n");
        let dom =
            submit_in_chromium(&format!("{}/{b}", server.url), &form, &filename, &content).await;
        let key = format!("from-browser/{filename}");
        assert!(
            dom.contains(&format!("<Key>{key}</Key>")),
            "{name}: the browser landed on {dom}"
        );
        let got = s3.get_object().bucket(&b).key(&key).send().await.unwrap();
        assert_eq!(got.content_type(), Some("text/plain"));
        let via = got
            .metadata()
            .and_then(|m| m.get("via"))
            .map(String::as_str);
        assert_eq!(via, Some("chromium"));
        assert_eq!(read_body(got.body).await, content.as_bytes());
    }
}

/// Opens a page whose form posts `form`'s fields to `action` with a file `filename` holding
/// `content`, submitted by the page's script; returns the DOM of the page the browser lands on.
async fn submit_in_chromium(
    action: &str,
    form: &PostForm,
    filename: &str,
    content: &str,
) -> String {
    let chromium = Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "headless Chromium is needed: apt-get install chromium (scripts/test installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let inputs: String = form
        .fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(k),
                esc(v)
            )
        })
        .collect();
    let js = |s: &str| serde_json::Value::from(s).to_string();
    let page = format!(
        "<!doctype html><html><body>\
         <form id=\"f\" method=\"post\" enctype=\"multipart/form-data\" action=\"{}\">{inputs}\
         <input type=\"file\" name=\"file\" id=\"file\"></form>\
         <script>\
         const picked = new DataTransfer();\
         picked.items.add(new File([{}], {}, {{type: \"text/plain\"}}));\
         document.getElementById(\"file\").files = picked.files;\
         document.getElementById(\"f\").submit();\
         </script></body></html>",
        esc(action),
        js(content),
        js(filename),
    );
    let html = dir.path().join("form.html");
    std::fs::write(&html, page).unwrap();
    let run = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("file://{}", html.display()))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("chromium did not finish within 90 s")
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
