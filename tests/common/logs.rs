//! Reading the access log a spawned server writes to stderr (start it with
//! `RUST_LOG=info,outpost::access=info`), and raw HTTP exchanges from a chosen source address
//! (Linux answers on all of 127.0.0.0/8, so 127.0.0.2 is a second client on one machine) and
//! at a chosen reading pace.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use super::TestStore;

/// The environment that turns the access log on.
pub const ACCESS_LOG: (&str, &str) = ("RUST_LOG", "warn,outpost::access=info");

/// One exchange's outcome, as the client saw it.
pub struct Exchange {
    pub status: u16,
    pub head: String,
    pub body_len: usize,
    /// From writing the request to reading the last byte.
    pub elapsed: Duration,
}

impl Exchange {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// `GET target` to `server` from `source` (an address on the loopback), with `headers`,
/// `Connection: close`; reads the answer to its end in pieces of at most `piece` bytes with
/// `pause` after each (a slow reader, with a small receive buffer so the pace is felt).
pub async fn get_from(
    server: &TestStore,
    source: &str,
    target: &str,
    headers: &[(&str, &str)],
    pace: Option<(usize, Duration)>,
) -> Exchange {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{source}:0").parse::<SocketAddr>().unwrap())
        .unwrap();
    if pace.is_some() {
        socket.set_recv_buffer_size(64 << 10).unwrap();
    }
    let mut stream = socket.connect(server.addr.parse().unwrap()).await.unwrap();
    let mut request = format!(
        "GET {target} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
        server.addr
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    let started = Instant::now();
    stream.write_all(request.as_bytes()).await.unwrap();
    let (piece, pause) = pace.unwrap_or((64 << 10, Duration::ZERO));
    let mut buf = vec![0u8; piece];
    let mut got = Vec::new();
    let read_all = async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read_all)
        .await
        .expect("the answer did not end within 120 s");
    let elapsed = started.elapsed();
    let split = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&got[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    Exchange {
        status,
        head,
        body_len: got.len() - split - 4,
        elapsed,
    }
}

/// The access line that contains `needle` (e.g. `path=/b/k `; waits until the server wrote
/// it), as its fields.
pub async fn access_line(server: &TestStore, needle: &str) -> HashMap<String, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stderr = server.stderr();
        let mut lines = stderr.lines();
        if let Some(line) = lines.find(|l| l.contains("outpost::access") && l.contains(needle)) {
            return fields(line);
        }
        assert!(
            Instant::now() < deadline,
            "no access line with {needle:?} in:\n{stderr}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Three anonymous GETs to `server` (started with [`ACCESS_LOG`] and `trusted_proxies` that
/// hold 127.0.0.1 but not 127.0.0.2): the access line names the client a trusted proxy
/// forwarded for, ignores X-Forwarded-For from anyone else, and carries the user agent; no
/// colour codes reach the piped stderr.
pub async fn assert_client_fields(server: &TestStore) {
    let agent = "access-log-test/1.0 (bug 10)";
    let line = async |n: u32, source: &str, forwarded: Option<&str>| {
        let mut headers = vec![("user-agent", agent)];
        headers.extend(forwarded.map(|f| ("x-forwarded-for", f)));
        let target = format!("/no-such-bucket/k{n}?x=1");
        let r = get_from(server, source, &target, &headers, None).await;
        assert_eq!(r.status, 403, "{}", r.head);
        let line = access_line(server, &format!("path=/no-such-bucket/k{n} ")).await;
        assert_eq!(
            Some(line["request_id"].as_str()),
            r.header("x-amz-request-id")
        );
        line
    };
    // From the trusted proxy: the address it forwarded for (the rightmost untrusted hop; what
    // the client wrote itself further left proves nothing).
    let proxied = line(1, "127.0.0.1", Some("192.0.2.66, 198.51.100.7")).await;
    assert_eq!(proxied["client"], "198.51.100.7");
    assert!(proxied["peer"].starts_with("127.0.0.1:"), "{proxied:?}");
    assert_eq!(proxied["user_agent"], agent);
    assert_eq!(proxied["operation"], "GetObject");
    assert_eq!(proxied["status"], "403");
    assert_eq!(proxied["query"], "x=1");
    // From anyone else, X-Forwarded-For is a claim and is ignored.
    let spoofed = line(2, "127.0.0.2", Some("198.51.100.7")).await;
    assert_eq!(spoofed["client"], "127.0.0.2");
    assert!(spoofed["peer"].starts_with("127.0.0.2:"), "{spoofed:?}");
    let direct = line(3, "127.0.0.1", None).await;
    assert_eq!(direct["client"], "127.0.0.1");
    let stderr = server.stderr();
    assert!(
        !stderr.contains("\x1b["),
        "colour codes in a piped stderr:\n{stderr}"
    );
}

/// A presigned GET of `/bucket/key` (`len` bytes) from `server`, read slowly: the access
/// line's `ms` is the time to the last byte (the client's pace), `ms_head` the time to the
/// head, and the signature stays out of the log. Returns the line for more checks.
pub async fn assert_slow_read_timed(
    server: &TestStore,
    bucket: &str,
    key: &str,
    len: usize,
) -> HashMap<String, String> {
    let target = super::RawRequest::new("GET", &format!("/{bucket}/{key}"))
        .presign(
            server,
            &super::SignOpts::default(),
            Duration::from_secs(600),
        )
        .target;
    let pace = Some((64 << 10, Duration::from_millis(5)));
    let r = get_from(server, "127.0.0.1", &target, &[], pace).await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.body_len, len);
    let line = access_line(server, &format!("method=GET path=/{bucket}/{key} ")).await;
    let ms: f64 = line["ms"].parse().unwrap();
    let ms_head: f64 = line["ms_head"].parse().unwrap();
    let client_ms = r.elapsed.as_secs_f64() * 1e3;
    eprintln!(
        "slow read: the client took {client_ms:.0} ms; logged ms {ms:.0}, ms_head {ms_head:.2}"
    );
    // The socket buffers (a few MiB on loopback) hold the tail the client had still to read
    // when the server handed over its last byte: half the client's time is a safe floor.
    assert!(
        ms >= client_ms / 2.0 && ms <= client_ms + 1000.0,
        "ms = {ms}, the client took {client_ms} ms: {line:?}"
    );
    assert!(ms_head <= ms / 4.0, "ms_head = {ms_head}, ms = {ms}");
    assert_eq!(line["bytes_sent"], len.to_string());
    assert!(!line["query"].contains("Signature"), "{line:?}");
    line
}

/// `key=value` and `key="quoted \" value"` pairs of a tracing line.
pub fn fields(line: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = line;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].rsplit(' ').next().unwrap_or("").to_string();
        let after = &rest[eq + 1..];
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            value.push(next);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.insert(key, value);
        rest = tail;
    }
    out
}

#[test]
fn fields_parse() {
    let f = fields(
        r#"INFO outpost::access: request_id=AB client=1.2.3.4 user_agent="a \"b\" c" ms=1.5"#,
    );
    assert_eq!(f["request_id"], "AB");
    assert_eq!(f["client"], "1.2.3.4");
    assert_eq!(f["user_agent"], r#"a "b" c"#);
    assert_eq!(f["ms"], "1.5");
}
