//! The `aws-chunked` body encoding: `hex-size[;chunk-signature=sig]\r\n data \r\n ...`, ended
//! by a zero-size chunk and optional trailing headers (`x-amz-checksum-*`, and for signed
//! trailers `x-amz-trailer-signature`).
//!
//! Data is passed on as it arrives and each chunk's signature is checked when its last byte
//! has been read, so memory stays bounded by the framing, never by the chunk size. A bad
//! signature or framing ends the stream with an error; since the engine commits only bodies
//! that end cleanly, nothing built from a rejected body becomes visible.

use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ChunkSigning, Trailers, sigv4};
use crate::engine::ByteStream;
use crate::error::{Code, Error, Result};

/// Longest chunk-size line or trailer line we accept.
const MAX_LINE: usize = 4096;
/// Most trailer lines we accept.
const MAX_TRAILERS: usize = 16;
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Decodes `raw`; trailing headers land in `trailers` once the body has ended.
pub fn decode(
    raw: ByteStream,
    signing: Option<ChunkSigning>,
    decoded_length: Option<u64>,
    trailers: Trailers,
) -> ByteStream {
    let decoder = Decoder {
        input: Input {
            raw,
            buf: BytesMut::new(),
        },
        chain: signing.map(|signing| Chain {
            previous: signing.seed_signature.clone(),
            signing,
        }),
        chunk: None,
        total: 0,
        decoded_length,
        trailers,
    };
    futures::stream::unfold(Some(decoder), |decoder| async move {
        let mut decoder = decoder?;
        match decoder.next().await {
            Ok(Some(data)) => Some((Ok(data), Some(decoder))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    })
    .boxed()
}

/// The inverse for relays: `body` framed as unsigned aws-chunked
/// (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`), ending with the headers `trailers` holds once
/// `body` has ended (a decoded body fills them just before its end).
pub fn encode_unsigned(body: ByteStream, trailers: Trailers) -> ByteStream {
    use futures::TryStreamExt;
    // An empty piece would read as the final chunk.
    let framed = body
        .try_filter(|data| std::future::ready(!data.is_empty()))
        .map_ok(|data| {
            let mut out = BytesMut::with_capacity(data.len() + 24);
            out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            out.extend_from_slice(&data);
            out.extend_from_slice(b"\r\n");
            out.freeze()
        });
    let end = futures::stream::once(async move {
        let mut out = String::from("0\r\n");
        for (name, value) in trailers.all() {
            out.push_str(&format!("{name}:{value}\r\n"));
        }
        out.push_str("\r\n");
        Ok(Bytes::from(out))
    });
    framed.chain(end).boxed()
}

struct Decoder {
    input: Input,
    chain: Option<Chain>,
    /// The chunk whose data is being read.
    chunk: Option<Chunk>,
    total: u64,
    decoded_length: Option<u64>,
    trailers: Trailers,
}

struct Chunk {
    remaining: u64,
    hasher: Sha256,
    signature: Option<String>,
}

impl Decoder {
    /// The next piece of decoded data, or `None` once the body has ended well.
    async fn next(&mut self) -> Result<Option<Bytes>> {
        loop {
            if let Some(chunk) = &mut self.chunk {
                if chunk.remaining > 0 {
                    let data = self.input.take(chunk.remaining).await?;
                    chunk.remaining -= data.len() as u64;
                    chunk.hasher.update(&data);
                    self.total += data.len() as u64;
                    if self.decoded_length.is_some_and(|n| self.total > n) {
                        return Err(malformed("more data than x-amz-decoded-content-length"));
                    }
                    return Ok(Some(data));
                }
                let chunk = self.chunk.take().expect("checked above");
                if !self.input.line().await?.is_empty() {
                    return Err(malformed("chunk data is longer than its declared size"));
                }
                if let Some(chain) = &mut self.chain {
                    chain.check_chunk(&hex::encode(chunk.hasher.finalize()), chunk.signature)?;
                }
                continue;
            }
            let line = self.input.line().await?;
            let (size, signature) = parse_chunk_header(&line)?;
            if size > 0 {
                self.chunk = Some(Chunk {
                    remaining: size,
                    hasher: Sha256::new(),
                    signature,
                });
                continue;
            }
            if let Some(chain) = &mut self.chain {
                chain.check_chunk(EMPTY_SHA256, signature)?;
            }
            self.finish().await?;
            return Ok(None);
        }
    }

    /// After the zero-size chunk: trailers, their signature, the declared length.
    async fn finish(&mut self) -> Result<()> {
        let mut headers = http::HeaderMap::new();
        let mut canonical = String::new();
        let mut trailer_signature = None;
        while let Some(line) = self.input.line_or_eof().await? {
            if line.is_empty() {
                break;
            }
            if headers.len() >= MAX_TRAILERS {
                return Err(malformed("too many trailing headers"));
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| malformed("trailing header without ':'"))?;
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "x-amz-trailer-signature" {
                trailer_signature = Some(value.to_owned());
                continue;
            }
            canonical.push_str(&format!("{name}:{value}\n"));
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| malformed("invalid trailing header name"))?;
            let value = http::HeaderValue::from_str(value)
                .map_err(|_| malformed("invalid trailing header value"))?;
            headers.insert(name, value);
        }
        if let Some(chain) = &self.chain
            && !headers.is_empty()
        {
            chain.check_trailer(&canonical, trailer_signature)?;
        }
        if self
            .input
            .line_or_eof()
            .await?
            .is_some_and(|l| !l.is_empty())
        {
            return Err(malformed("data after the final chunk"));
        }
        if let Some(declared) = self.decoded_length
            && self.total != declared
        {
            return Err(Error::msg(
                Code::IncompleteBody,
                format!(
                    "The body carried {} bytes, x-amz-decoded-content-length says {declared}",
                    self.total
                ),
            ));
        }
        self.trailers.set(headers);
        Ok(())
    }
}

/// `10000;chunk-signature=ad80…` → (0x10000, Some("ad80…")). Other extensions are ignored.
fn parse_chunk_header(line: &str) -> Result<(u64, Option<String>)> {
    let mut parts = line.split(';');
    let size = parts.next().unwrap_or("").trim();
    if size.is_empty() || size.len() > 16 {
        return Err(malformed("invalid chunk size"));
    }
    let size = u64::from_str_radix(size, 16).map_err(|_| malformed("invalid chunk size"))?;
    let signature = parts
        .filter_map(|ext| ext.trim().split_once('='))
        .find(|(k, _)| *k == "chunk-signature")
        .map(|(_, v)| v.to_owned());
    Ok((size, signature))
}

/// The chunk-signature chain: each signature covers the previous one and its chunk's data.
struct Chain {
    signing: ChunkSigning,
    previous: String,
}

impl Chain {
    fn check_chunk(&mut self, data_sha256: &str, claimed: Option<String>) -> Result<()> {
        let claimed = claimed.ok_or_else(|| malformed("chunk without chunk-signature"))?;
        let s = &self.signing;
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{data_sha256}",
            s.amz_date, s.scope, self.previous
        );
        self.previous = verify(s, &string_to_sign, claimed)?;
        Ok(())
    }

    fn check_trailer(&self, canonical: &str, claimed: Option<String>) -> Result<()> {
        let claimed =
            claimed.ok_or_else(|| malformed("trailer without x-amz-trailer-signature"))?;
        let s = &self.signing;
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            s.amz_date,
            s.scope,
            self.previous,
            sigv4::sha256_hex(canonical.as_bytes())
        );
        verify(s, &string_to_sign, claimed).map(drop)
    }
}

/// Returns the signature when it matches (it seeds the next link of the chain).
fn verify(signing: &ChunkSigning, string_to_sign: &str, claimed: String) -> Result<String> {
    let expected = sigv4::signature(&signing.signing_key, string_to_sign);
    if bool::from(expected.as_bytes().ct_eq(claimed.as_bytes())) {
        Ok(claimed)
    } else {
        Err(Error::new(Code::SignatureDoesNotMatch))
    }
}

fn malformed(what: &str) -> Error {
    Error::msg(
        Code::InvalidRequest,
        format!("Malformed aws-chunked body: {what}"),
    )
}

/// The raw body with just enough buffering to read framing lines.
struct Input {
    raw: ByteStream,
    buf: BytesMut,
}

impl Input {
    /// Up to `max` data bytes (at least one); the raw piece is passed on without copying when
    /// it lies within the chunk.
    async fn take(&mut self, max: u64) -> Result<Bytes> {
        if self.buf.is_empty() {
            let mut piece = self.raw.next().await.ok_or_else(truncated)??;
            if piece.len() as u64 > max {
                self.buf.extend_from_slice(&piece.split_off(max as usize));
            }
            return Ok(piece);
        }
        let n = self
            .buf
            .len()
            .min(usize::try_from(max).unwrap_or(usize::MAX));
        Ok(self.buf.split_to(n).freeze())
    }

    /// The next line without its CRLF; the body ending first is IncompleteBody.
    async fn line(&mut self) -> Result<String> {
        self.line_or_eof().await?.ok_or_else(truncated)
    }

    /// The next line, or `None` if the body ends cleanly before it.
    async fn line_or_eof(&mut self) -> Result<Option<String>> {
        loop {
            // The limit holds however the body is split: a complete line is checked as well
            // as a partial one, which may still end with its CR in the buffer.
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                if end > MAX_LINE {
                    return Err(line_too_long());
                }
                let line = self.buf.split_to(end);
                self.buf.advance(2);
                return String::from_utf8(line.to_vec())
                    .map(Some)
                    .map_err(|_| malformed("framing is not UTF-8"));
            }
            if self.buf.len() > MAX_LINE + 1 {
                return Err(line_too_long());
            }
            match self.raw.next().await {
                Some(piece) => self.buf.extend_from_slice(&piece?),
                None if self.buf.is_empty() => return Ok(None),
                None => return Err(truncated()),
            }
        }
    }
}

fn line_too_long() -> Error {
    malformed("framing line too long")
}

fn truncated() -> Error {
    Error::msg(Code::IncompleteBody, "The aws-chunked body ended early.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    // AWS's published streaming example: 66560 bytes of 'a' in 64 KiB chunks.
    const SIGS: [&str; 3] = [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ];

    fn signing() -> ChunkSigning {
        ChunkSigning {
            signing_key: sigv4::signing_key(SECRET, "20130524", "us-east-1", "s3"),
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            seed_signature: SEED.into(),
        }
    }

    fn aws_example_body() -> Vec<u8> {
        let mut body = Vec::new();
        for (size, sig) in [(0x10000, SIGS[0]), (0x400, SIGS[1])] {
            body.extend_from_slice(format!("{size:x};chunk-signature={sig}\r\n").as_bytes());
            body.extend(std::iter::repeat_n(b'a', size));
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("0;chunk-signature={}\r\n\r\n", SIGS[2]).as_bytes());
        body
    }

    /// Feeds `body` in pieces of `split` bytes and collects the outcome.
    async fn run(
        body: &[u8],
        split: usize,
        signing: Option<ChunkSigning>,
        decoded_length: Option<u64>,
    ) -> (Result<Vec<u8>>, Trailers) {
        let pieces: Vec<Result<Bytes>> = body
            .chunks(split)
            .map(|p| Ok(Bytes::copy_from_slice(p)))
            .collect();
        let trailers = Trailers::default();
        let mut out = decode(
            futures::stream::iter(pieces).boxed(),
            signing,
            decoded_length,
            trailers.clone(),
        );
        let mut data = Vec::new();
        while let Some(piece) = out.next().await {
            match piece {
                Ok(p) => data.extend_from_slice(&p),
                Err(e) => return (Err(e), trailers),
            }
        }
        (Ok(data), trailers)
    }

    #[tokio::test]
    async fn aws_published_streaming_example_at_every_split() {
        let body = aws_example_body();
        for split in [1, 2, 7, 86, 4096, 65536, body.len()] {
            let (data, _) = run(&body, split, Some(signing()), Some(66560)).await;
            let data = data.unwrap_or_else(|e| panic!("split {split}: {e:?}"));
            assert_eq!(data, vec![b'a'; 66560], "split {split}");
        }
    }

    #[tokio::test]
    async fn tampered_data_and_broken_chains_fail() {
        let mut body = aws_example_body();
        body[200] = b'b';
        let (r, _) = run(&body, 1000, Some(signing()), None).await;
        assert_eq!(r.unwrap_err().code, Code::SignatureDoesNotMatch);

        let mut wrong_seed = signing();
        wrong_seed.seed_signature = SIGS[0].into();
        let (r, _) = run(&aws_example_body(), 1000, Some(wrong_seed), None).await;
        assert_eq!(r.unwrap_err().code, Code::SignatureDoesNotMatch);

        // Chunks without signatures in a signed stream.
        let (r, _) = run(b"3\r\nabc\r\n0\r\n\r\n", 4, Some(signing()), None).await;
        assert_eq!(r.unwrap_err().code, Code::InvalidRequest);
    }

    #[tokio::test]
    async fn unsigned_trailer_and_lengths() {
        let body = b"3\r\nabc\r\n2\r\nde\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n";
        for split in 1..body.len() {
            let (data, trailers) = run(body, split, None, Some(5)).await;
            assert_eq!(data.unwrap(), b"abcde");
            assert_eq!(
                trailers.get("x-amz-checksum-crc32").as_deref(),
                Some("NSRBwg==")
            );
        }
        let (r, _) = run(body, 8, None, Some(6)).await;
        assert_eq!(r.unwrap_err().code, Code::IncompleteBody);
        let (r, _) = run(body, 8, None, Some(4)).await;
        assert_eq!(r.unwrap_err().code, Code::InvalidRequest);
        let (r, _) = run(&body[..10], 3, None, None).await;
        assert_eq!(r.unwrap_err().code, Code::IncompleteBody);
        let (r, _) = run(b"3\r\nabcd\r\n0\r\n\r\n", 3, None, None).await;
        assert_eq!(r.unwrap_err().code, Code::InvalidRequest);
        let (r, _) = run(b"zz\r\n", 3, None, None).await;
        assert_eq!(r.unwrap_err().code, Code::InvalidRequest);
    }

    #[tokio::test]
    async fn encoding_round_trips_through_the_decoder() {
        let trailers = Trailers::default();
        let mut h = http::HeaderMap::new();
        h.insert("x-amz-checksum-crc32", "NSRBwg==".parse().unwrap());
        trailers.set(h);
        let body =
            futures::stream::iter([&b"abc"[..], b"", b"de"].map(|p| Ok(Bytes::copy_from_slice(p))))
                .boxed();
        let encoded: Vec<Bytes> = encode_unsigned(body, trailers).try_collect().await.unwrap();
        let encoded = encoded.concat();
        assert_eq!(
            encoded,
            b"3\r\nabc\r\n2\r\nde\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n"
        );
        let (data, back) = run(&encoded, 4, None, Some(5)).await;
        assert_eq!(data.unwrap(), b"abcde");
        assert_eq!(
            back.get("x-amz-checksum-crc32").as_deref(),
            Some("NSRBwg==")
        );
    }

    #[tokio::test]
    async fn signed_trailer() {
        let s = signing();
        let last = chain_sig(&s, SEED, EMPTY_SHA256);
        let trailer = "x-amz-checksum-crc32:AAAAAA==\n";
        let tsig = sigv4::signature(
            &s.signing_key,
            &format!(
                "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{last}\n{}",
                s.amz_date,
                s.scope,
                sigv4::sha256_hex(trailer.as_bytes())
            ),
        );
        let body = format!(
            "0;chunk-signature={last}\r\nx-amz-checksum-crc32:AAAAAA==\r\nx-amz-trailer-signature:{tsig}\r\n\r\n"
        );
        let (r, t) = run(body.as_bytes(), 5, Some(signing()), Some(0)).await;
        assert_eq!(r.unwrap(), b"");
        assert_eq!(t.get("x-amz-checksum-crc32").as_deref(), Some("AAAAAA=="));

        let forged = body.replace("AAAAAA==", "BBBBBB==");
        let (r, _) = run(forged.as_bytes(), 5, Some(signing()), Some(0)).await;
        assert_eq!(r.unwrap_err().code, Code::SignatureDoesNotMatch);
    }

    /// Found by the aws_chunked fuzz target (the outcome depended on the split): a line over
    /// MAX_LINE was refused when it arrived in pieces and accepted when it came in one.
    #[tokio::test]
    async fn framing_line_limit_does_not_depend_on_how_the_body_arrives() {
        let body = |line_len: usize| {
            let ext = format!("3;{}", "x".repeat(line_len - 2));
            format!("{ext}\r\nabc\r\n0\r\n\r\n").into_bytes()
        };
        let (long, longest_ok) = (body(MAX_LINE + 1), body(MAX_LINE));
        for split in [
            1,
            7,
            MAX_LINE - 1,
            MAX_LINE,
            MAX_LINE + 1,
            MAX_LINE + 2,
            1 << 20,
        ] {
            let (r, _) = run(&long, split, None, Some(3)).await;
            assert_eq!(r.unwrap_err().code, Code::InvalidRequest, "split {split}");
            let (r, _) = run(&longest_ok, split, None, Some(3)).await;
            assert_eq!(r.unwrap(), b"abc", "split {split}");
        }
    }

    fn chain_sig(s: &ChunkSigning, previous: &str, data_sha256: &str) -> String {
        sigv4::signature(
            &s.signing_key,
            &format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{previous}\n{EMPTY_SHA256}\n{data_sha256}",
                s.amz_date, s.scope
            ),
        )
    }
}
