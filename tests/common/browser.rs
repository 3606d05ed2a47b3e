//! Headless Chromium for tests whose client is a browser (CORS, form uploads).
//!
//! A test serves its page from an origin of its own with [`PageServer`] (127.0.0.1, port 0:
//! another port is another origin), has Chromium load it with [`dump_dom`], and reads what the
//! page's scripts wrote into an element with [`element_text`]. Pages should catch their own
//! failures and write them out too: a request the browser blocks shows as a `TypeError`.
//!
//! ```ignore
//! let page = PageServer::start().await;
//! page.show("<pre id=\"out\">pending</pre><script>fetch(URL).then(r => out.textContent = r.status,
//!     e => out.textContent = 'blocked ' + e)</script>");
//! let dom = dump_dom(&page.url).await;
//! assert_eq!(element_text(&dom, "out").as_deref(), Some("200"));
//! ```
//!
//! Needs Debian's `chromium` (`/usr/bin/chromium`, or the binary named by `$CHROMIUM`);
//! `scripts/test` installs it. Each load runs a fresh browser with a throwaway profile.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The Chromium binary: `$CHROMIUM`, else `chromium` on the PATH.
pub fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Serves one HTML page (at every path) until dropped.
pub struct PageServer {
    /// `http://127.0.0.1:PORT`: the page's origin, as the browser sends it in `Origin`.
    pub url: String,
    html: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl PageServer {
    pub async fn start() -> PageServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let html = Arc::new(Mutex::new(String::new()));
        let page = Arc::clone(&html);
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let page = page.lock().unwrap().clone();
                tokio::spawn(async move {
                    // The request head is all there is to read (the browser GETs).
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                        page.len()
                    );
                    let _ = conn.write_all(response.as_bytes()).await;
                });
            }
        });
        PageServer { url, html, task }
    }

    /// The page served from now on.
    pub fn show(&self, html: &str) {
        *self.html.lock().unwrap() = html.to_owned();
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Loads `url` in headless Chromium, lets its scripts run (their fetches included) for up to
/// 20 s of virtual time, and returns the DOM as HTML. Panics if Chromium cannot run or takes
/// over two minutes (a loaded machine is slow, not that slow).
pub async fn dump_dom(url: &str) -> String {
    dump_dom_with(url, &[]).await
}

/// [`dump_dom`] with more Chromium flags (e.g. `--ignore-certificate-errors-spki-list=...`,
/// which trusts one key: it needs the throwaway profile every load has).
pub async fn dump_dom_with(url: &str, flags: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(chromium())
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-extensions",
            "--virtual-time-budget=20000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(flags)
        .args(["--dump-dom", url])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("chromium took over 2 minutes")
        .unwrap_or_else(|e| panic!("cannot run {} (scripts/test installs it): {e}", chromium()));
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && !dom.is_empty(),
        "chromium failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    dom
}

/// The text of the element with `id` in a dumped DOM (entities decoded), if it has no
/// children.
pub fn element_text(dom: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let at = dom.find(&marker)?;
    let start = at + dom[at..].find('>')? + 1;
    let end = start + dom[start..].find('<')?;
    Some(super::raw::unescape(&dom[start..end]))
}
