//! The integrity headers of writes: Content-MD5, `x-amz-checksum-*`, the checksum a trailer
//! will carry, and the engine `Verify` callback that checks them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http::header::HeaderMap;

use super::get;
use crate::engine::checksum::Hasher;
use crate::engine::{ByteStream, ChecksumAlgorithm, ChecksumValue, Digests, Verify};
use crate::error::{Code, Error, Result};
use crate::s3::auth::Trailers;

/// What a write must verify and which checksum it stores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Integrity {
    pub content_md5: Option<[u8; 16]>,
    /// The algorithm to compute and store.
    pub algorithm: Option<ChecksumAlgorithm>,
    /// The value sent in a header, if any.
    pub expected: Option<ChecksumValue>,
    /// The value will arrive in this trailer.
    pub trailer: Option<ChecksumAlgorithm>,
}

/// Reads Content-MD5, `x-amz-checksum-<algo>`, `x-amz-sdk-checksum-algorithm` and
/// `x-amz-trailer` from a write request.
pub fn integrity(req: &HeaderMap) -> Result<Integrity> {
    let content_md5 = get(req, "content-md5")
        .map(|v| {
            B64.decode(v.trim())
                .ok()
                .and_then(|raw| <[u8; 16]>::try_from(raw).ok())
                .ok_or_else(|| Error::new(Code::InvalidDigest))
        })
        .transpose()?;
    let mut expected = None;
    for algorithm in ChecksumAlgorithm::ALL {
        if let Some(value) = get(req, algorithm.header()) {
            if expected.is_some() {
                return Err(Error::msg(
                    Code::InvalidRequest,
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                ));
            }
            expected = Some(ChecksumValue::from_base64(algorithm, value).ok_or_else(|| {
                Error::msg(
                    Code::InvalidRequest,
                    format!("Value for {} header is invalid.", algorithm.header()),
                )
            })?);
        }
    }
    let trailer = match get(req, "x-amz-trailer") {
        Some(name) => Some(ChecksumAlgorithm::from_header(name.trim()).ok_or_else(|| {
            Error::msg(
                Code::InvalidRequest,
                "The value specified in the x-amz-trailer header is not supported",
            )
        })?),
        None => None,
    };
    let declared = get(req, "x-amz-sdk-checksum-algorithm")
        .map(|v| {
            ChecksumAlgorithm::from_name(v).ok_or_else(|| {
                Error::msg(
                    Code::InvalidRequest,
                    "Checksum algorithm provided is unsupported.",
                )
            })
        })
        .transpose()?;
    let algorithm = expected
        .as_ref()
        .map(|v| v.algorithm)
        .or(trailer)
        .or(declared);
    Ok(Integrity {
        content_md5,
        algorithm,
        expected,
        trailer,
    })
}

impl Integrity {
    /// The callback the engine runs on the computed digests before it commits.
    pub fn into_verify(self, trailers: Trailers) -> Verify {
        Box::new(move |d: &Digests| {
            if self.content_md5.is_some_and(|md5| md5 != d.md5) {
                return Err(Error::new(Code::BadDigest));
            }
            match (self.expected_value(&trailers)?, &d.checksum) {
                (Some(want), Some(got)) if want != *got => Err(mismatch(want.algorithm)),
                _ => Ok(()),
            }
        })
    }

    /// Checks the sent checksum on the body itself, for writes that store a checksum of
    /// another algorithm or none (an UploadPart with a checksum into an upload created
    /// without one): the stream ends in BadDigest instead of its end.
    pub fn verify_stream(&self, body: ByteStream, trailers: Trailers) -> ByteStream {
        use futures::StreamExt;
        let Some(algorithm) = self.algorithm else {
            return body;
        };
        let me = self.clone();
        let state = (body, Some(Hasher::new(algorithm)));
        futures::stream::unfold(state, move |(mut body, hasher)| {
            let (me, trailers) = (me.clone(), trailers.clone());
            async move {
                let mut hasher = hasher?;
                match body.next().await {
                    Some(Ok(chunk)) => {
                        hasher.update(&chunk);
                        Some((Ok(chunk), (body, Some(hasher))))
                    }
                    Some(Err(e)) => Some((Err(e), (body, None))),
                    None => match me.expected_value(&trailers) {
                        Ok(Some(want)) if want != hasher.finalize() => {
                            Some((Err(mismatch(want.algorithm)), (body, None)))
                        }
                        Ok(_) => None,
                        Err(e) => Some((Err(e), (body, None))),
                    },
                }
            }
        })
        .boxed()
    }

    /// The checksum the client sent, from its header or (once the body has ended) its trailer.
    fn expected_value(&self, trailers: &Trailers) -> Result<Option<ChecksumValue>> {
        Ok(match (&self.expected, self.trailer) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(algorithm)) => {
                let value = trailers.get(algorithm.header()).ok_or_else(|| {
                    Error::msg(
                        Code::InvalidRequest,
                        format!(
                            "The {} trailer was announced but not sent.",
                            algorithm.header()
                        ),
                    )
                })?;
                Some(
                    ChecksumValue::from_base64(algorithm, &value).ok_or_else(|| {
                        Error::msg(
                            Code::InvalidRequest,
                            format!(
                                "Value for {} trailing header is invalid.",
                                algorithm.header()
                            ),
                        )
                    })?,
                )
            }
            (None, None) => None,
        })
    }
}

fn mismatch(algorithm: ChecksumAlgorithm) -> Error {
    Error::msg(
        Code::BadDigest,
        format!(
            "The {} you specified did not match the calculated checksum.",
            algorithm.name()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    use crate::s3::headers::test_headers as headers;

    #[test]
    fn integrity_rules() {
        let i = integrity(&headers(&[("x-amz-checksum-crc32", "DUoRhQ==")])).unwrap();
        assert_eq!(i.algorithm, Some(ChecksumAlgorithm::Crc32));
        let i = integrity(&headers(&[("x-amz-trailer", "x-amz-checksum-crc64nvme")])).unwrap();
        assert_eq!(i.trailer, Some(ChecksumAlgorithm::Crc64Nvme));
        assert_eq!(
            integrity(&headers(&[("content-md5", "nope")]))
                .unwrap_err()
                .code,
            Code::InvalidDigest
        );
        assert_eq!(
            integrity(&headers(&[("x-amz-checksum-sha1", "short")]))
                .unwrap_err()
                .code,
            Code::InvalidRequest
        );

        let data = b"hello world\n";
        let digests = Digests {
            size: data.len() as u64,
            md5: [0; 16],
            checksum: Some(crate::engine::checksum::checksum(
                ChecksumAlgorithm::Crc32,
                data,
            )),
        };
        let good = crate::engine::checksum::checksum(ChecksumAlgorithm::Crc32, data).to_base64();
        let trailers = Trailers::default();
        let verify = integrity(&headers(&[("x-amz-trailer", "x-amz-checksum-crc32")]))
            .unwrap()
            .into_verify(trailers.clone());
        let mut t = HeaderMap::new();
        t.insert(
            "x-amz-checksum-crc32",
            HeaderValue::from_str(&good).unwrap(),
        );
        trailers.set(t);
        verify(&digests).unwrap();
        let verify = integrity(&headers(&[("x-amz-checksum-crc32", "AAAAAA==")]))
            .unwrap()
            .into_verify(Trailers::default());
        assert_eq!(verify(&digests).unwrap_err().code, Code::BadDigest);
    }
}
