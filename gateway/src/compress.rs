//! Edge compression, as a CDN does it: gzip or brotli for compressible content types when the
//! client accepts them, the compressed representation cached as its own variant of the object
//! (the `Vary: Accept-Encoding` part of the cache key).

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

/// CloudFront's bounds: tiny bodies do not gain, huge ones cost too much to compress inline.
const MIN_SIZE: u64 = 1_000;
pub const MAX_SIZE: u64 = 10_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }
}

/// The encoding to use for `Accept-Encoding`: brotli over gzip, nothing refused with `q=0`.
pub fn negotiate(accept_encoding: Option<&str>) -> Option<Encoding> {
    let accepted = |name: &str| {
        accept_encoding?.split(',').find_map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next()?;
            if !coding.eq_ignore_ascii_case(name) && coding != "*" {
                return None;
            }
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            Some(!refused)
        })
    };
    [Encoding::Brotli, Encoding::Gzip]
        .into_iter()
        .find(|e| accepted(e.as_str()) == Some(true))
}

/// Whether a body of this type and size is worth compressing (text-like types only; never
/// one that already has a Content-Encoding).
pub fn compressible(content_type: Option<&str>, content_encoding: Option<&str>, size: u64) -> bool {
    if content_encoding.is_some_and(|e| !e.is_empty() && e != "identity") {
        return false;
    }
    if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
        return false;
    }
    let Some(ct) = content_type else { return false };
    let ct = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    ct.starts_with("text/")
        || ct.ends_with("+json")
        || ct.ends_with("+xml")
        || [
            "application/javascript",
            "application/x-javascript",
            "application/json",
            "application/xml",
            "application/wasm",
            "image/svg+xml",
            "font/ttf",
            "font/otf",
            "application/vnd.ms-fontobject",
        ]
        .contains(&ct.as_str())
}

/// Compresses a whole body (at most [`MAX_SIZE`]).
pub async fn compress(data: &[u8], encoding: Encoding) -> std::io::Result<Bytes> {
    use async_compression::Level;
    use async_compression::tokio::write::{BrotliEncoder, GzipEncoder};
    let out = Vec::with_capacity(data.len() / 3);
    // Brotli's default (11) is for offline use; 5 compresses about as well as gzip -9 at a
    // fraction of the time.
    let out = match encoding {
        Encoding::Brotli => {
            let mut w = BrotliEncoder::with_quality(out, Level::Precise(5));
            w.write_all(data).await?;
            w.shutdown().await?;
            w.into_inner()
        }
        Encoding::Gzip => {
            let mut w = GzipEncoder::with_quality(out, Level::Default);
            w.write_all(data).await?;
            w.shutdown().await?;
            w.into_inner()
        }
    };
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(Some("gzip, deflate, br")), Some(Encoding::Brotli));
        assert_eq!(negotiate(Some("gzip")), Some(Encoding::Gzip));
        assert_eq!(negotiate(Some("br;q=0, gzip;q=0.5")), Some(Encoding::Gzip));
        assert_eq!(negotiate(Some("identity")), None);
        assert_eq!(negotiate(Some("*")), Some(Encoding::Brotli));
        assert_eq!(negotiate(None), None);
    }

    #[test]
    fn what_is_compressible() {
        assert!(compressible(Some("text/html; charset=utf-8"), None, 5000));
        assert!(compressible(
            Some("application/json"),
            Some("identity"),
            5000
        ));
        assert!(!compressible(Some("text/html"), Some("gzip"), 5000));
        assert!(!compressible(Some("image/png"), None, 5000));
        assert!(!compressible(Some("text/html"), None, 10));
        assert!(!compressible(None, None, 5000));
    }

    #[tokio::test]
    async fn round_trip_is_smaller() {
        let text = "hello outpost ".repeat(500);
        for e in [Encoding::Brotli, Encoding::Gzip] {
            let c = compress(text.as_bytes(), e).await.unwrap();
            assert!(c.len() < text.len() / 10, "{e:?}: {}", c.len());
        }
    }
}
