//! The five S3 flexible-checksum algorithms, incremental hashing, and the multipart forms
//! (COMPOSITE: checksum of the concatenated part checksums, `-N`; FULL_OBJECT: the CRC of the
//! whole object, combined from part CRCs without re-reading data).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use crc_fast::{CrcAlgorithm, Digest as Crc};
use serde::{Deserialize, Serialize};
use sha1::Digest as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

/// How a multipart object's checksum was formed (`x-amz-checksum-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChecksumType {
    Composite,
    FullObject,
}

impl ChecksumType {
    pub fn name(self) -> &'static str {
        match self {
            ChecksumType::Composite => "COMPOSITE",
            ChecksumType::FullObject => "FULL_OBJECT",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "COMPOSITE" => Some(ChecksumType::Composite),
            "FULL_OBJECT" => Some(ChecksumType::FullObject),
            _ => None,
        }
    }
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// The name S3 uses in `x-amz-checksum-algorithm` and XML (`CRC32`, `CRC64NVME`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// Case-insensitive parse of [`ChecksumAlgorithm::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
    }

    /// The header carrying this checksum: `x-amz-checksum-crc32`, ...
    pub fn header(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The algorithm whose header this is, if any.
    pub fn from_header(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.header().eq_ignore_ascii_case(name))
    }

    /// Length of the raw digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }

    /// Only CRCs can be combined into a FULL_OBJECT checksum; SHA only supports COMPOSITE.
    pub fn is_crc(self) -> bool {
        matches!(
            self,
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c | ChecksumAlgorithm::Crc64Nvme
        )
    }

    /// The multipart checksum type S3 uses when the client does not say: FULL_OBJECT for
    /// CRC64NVME, COMPOSITE for the others.
    pub fn default_type(self) -> ChecksumType {
        match self {
            ChecksumAlgorithm::Crc64Nvme => ChecksumType::FullObject,
            _ => ChecksumType::Composite,
        }
    }

    pub fn hasher(self) -> Hasher {
        Hasher::new(self)
    }

    fn crc(self) -> Option<CrcAlgorithm> {
        match self {
            ChecksumAlgorithm::Crc32 => Some(CrcAlgorithm::Crc32IsoHdlc),
            ChecksumAlgorithm::Crc32c => Some(CrcAlgorithm::Crc32Iscsi),
            ChecksumAlgorithm::Crc64Nvme => Some(CrcAlgorithm::Crc64Nvme),
            _ => None,
        }
    }
}

/// A computed checksum: the algorithm and its raw big-endian digest bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecksumValue {
    pub algorithm: ChecksumAlgorithm,
    pub raw: Vec<u8>,
}

impl ChecksumValue {
    pub fn to_base64(&self) -> String {
        B64.encode(&self.raw)
    }

    /// Parses a base64 header value; None if it is not valid base64 of the right length.
    pub fn from_base64(algorithm: ChecksumAlgorithm, value: &str) -> Option<Self> {
        let raw = B64.decode(value.trim()).ok()?;
        (raw.len() == algorithm.digest_len()).then_some(ChecksumValue { algorithm, raw })
    }
}

/// Incremental hasher for one algorithm.
pub struct Hasher {
    algorithm: ChecksumAlgorithm,
    state: State,
}

enum State {
    Crc(Crc),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        let state = match algorithm {
            ChecksumAlgorithm::Sha1 => State::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
            crc => State::Crc(Crc::new(crc.crc().expect("crc algorithm"))),
        };
        Hasher { algorithm, state }
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Crc(d) => d.update(data),
            State::Sha1(d) => d.update(data),
            State::Sha256(d) => d.update(data),
        }
    }

    pub fn finalize(self) -> ChecksumValue {
        let raw = match self.state {
            State::Crc(d) => crc_bytes(self.algorithm, d.finalize()),
            State::Sha1(d) => d.finalize().to_vec(),
            State::Sha256(d) => d.finalize().to_vec(),
        };
        ChecksumValue {
            algorithm: self.algorithm,
            raw,
        }
    }
}

fn crc_bytes(algorithm: ChecksumAlgorithm, crc: u64) -> Vec<u8> {
    if algorithm == ChecksumAlgorithm::Crc64Nvme {
        crc.to_be_bytes().to_vec()
    } else {
        (crc as u32).to_be_bytes().to_vec()
    }
}

fn crc_value(raw: &[u8]) -> u64 {
    raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// MD5 (the ETag) and the requested checksum of a body as it streams in. Chunks are queued
/// (shared `Bytes`, not copied) and hashed in batches on the blocking pool, one batch at a time,
/// while the caller goes on receiving and writing: a large PUT's hashing, MD5 alone ~550 MiB/s
/// on a core, runs beside its I/O instead of after it on the same core. No thread is held
/// between batches, and a body smaller than one batch is hashed inline at the end, with no
/// hand-off at all. Memory: at most [`BodyDigest::MAX_QUEUED`] bytes queued per body.
pub struct BodyDigest {
    /// At home while no batch is being hashed.
    hashers: Option<Hashers>,
    batch: Option<tokio::task::JoinHandle<Hashers>>,
    queued: Vec<bytes::Bytes>,
    queued_len: usize,
}

/// The md-5 crate, not OpenSSL's faster assembly (~1.3× here, BENCHMARKS.md): a pure-Rust
/// build needs no system C library to build or to run.
struct Hashers {
    md5: md5::Md5,
    checksum: Option<Hasher>,
}

impl Hashers {
    fn update(&mut self, chunks: &[bytes::Bytes]) {
        for chunk in chunks {
            md5::Digest::update(&mut self.md5, chunk);
            if let Some(h) = &mut self.checksum {
                h.update(chunk);
            }
        }
    }

    fn finish(self) -> ([u8; 16], Option<ChecksumValue>) {
        let md5 = md5::Digest::finalize(self.md5).into();
        (md5, self.checksum.map(Hasher::finalize))
    }
}

impl BodyDigest {
    /// A batch is handed off once this much is queued and the previous batch is done ...
    const BATCH: usize = 256 << 10;
    /// ... and the caller waits for the previous batch once this much is queued.
    const MAX_QUEUED: usize = 2 << 20;

    pub fn new(checksum: Option<ChecksumAlgorithm>) -> Self {
        BodyDigest {
            hashers: Some(Hashers {
                md5: md5::Digest::new(),
                checksum: checksum.map(Hasher::new),
            }),
            batch: None,
            queued: Vec::new(),
            queued_len: 0,
        }
    }

    pub async fn update(&mut self, chunk: bytes::Bytes) -> super::error::Result<()> {
        self.queued_len += chunk.len();
        self.queued.push(chunk);
        let busy = self.batch.as_ref().is_some_and(|b| !b.is_finished());
        if self.queued_len < Self::BATCH || (busy && self.queued_len < Self::MAX_QUEUED) {
            return Ok(());
        }
        let mut hashers = self.home().await?;
        let chunks = std::mem::take(&mut self.queued);
        self.queued_len = 0;
        self.batch = Some(tokio::task::spawn_blocking(move || {
            hashers.update(&chunks);
            hashers
        }));
        Ok(())
    }

    /// The MD5 and the checksum of everything passed to [`BodyDigest::update`].
    pub async fn finish(mut self) -> super::error::Result<([u8; 16], Option<ChecksumValue>)> {
        let mut hashers = self.home().await?;
        hashers.update(&self.queued);
        Ok(hashers.finish())
    }

    /// The hashers, back from the batch in flight if there is one.
    async fn home(&mut self) -> super::error::Result<Hashers> {
        if let Some(batch) = self.batch.take() {
            return Ok(batch.await?);
        }
        self.hashers
            .take()
            .ok_or_else(|| super::error::Error::internal(anyhow::anyhow!("body hashers lost")))
    }
}

/// One-shot checksum of a buffer.
pub fn checksum(algorithm: ChecksumAlgorithm, data: &[u8]) -> ChecksumValue {
    let mut h = Hasher::new(algorithm);
    h.update(data);
    h.finalize()
}

/// COMPOSITE multipart checksum: the checksum of the concatenated raw part checksums, returned
/// as base64 with the `-N` part-count suffix S3 uses.
pub fn composite(algorithm: ChecksumAlgorithm, parts: &[ChecksumValue]) -> String {
    let mut h = Hasher::new(algorithm);
    for p in parts {
        h.update(&p.raw);
    }
    format!("{}-{}", h.finalize().to_base64(), parts.len())
}

/// FULL_OBJECT multipart checksum: the CRC of the whole object, combined from each part's CRC
/// and length. None for SHA algorithms, which cannot be combined.
pub fn combine_full_object(
    algorithm: ChecksumAlgorithm,
    parts: &[(ChecksumValue, u64)],
) -> Option<ChecksumValue> {
    let crc = algorithm.crc()?;
    let mut iter = parts.iter();
    let (first, _) = iter.next()?;
    let combined = iter.fold(crc_value(&first.raw), |acc, (part, len)| {
        crc_fast::checksum_combine(crc, acc, crc_value(&part.raw), *len)
    });
    Some(ChecksumValue {
        algorithm,
        raw: crc_bytes(algorithm, combined),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies below one batch (hashed inline), across batches, and past the queue limit, in
    /// uneven chunks: the batched digests equal one-shot digests of the whole body.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn body_digest_equals_one_shot() {
        use md5::Digest as _;
        let body: Vec<u8> = (0..5_000_003u32).map(|i| (i * 31 % 253) as u8).collect();
        for len in [0, 1, 100_000, 256 << 10, 1 << 20, body.len()] {
            for chunk in [1_000, 65_536, 3 << 20] {
                let mut digest = BodyDigest::new(Some(ChecksumAlgorithm::Crc32c));
                for piece in body[..len].chunks(chunk) {
                    digest
                        .update(bytes::Bytes::copy_from_slice(piece))
                        .await
                        .unwrap();
                }
                let (md5, crc) = digest.finish().await.unwrap();
                let whole = &body[..len];
                assert_eq!(
                    md5,
                    <[u8; 16]>::from(md5::Md5::digest(whole)),
                    "{len}/{chunk}"
                );
                assert_eq!(crc, Some(checksum(ChecksumAlgorithm::Crc32c, whole)));
            }
        }
    }

    #[test]
    fn known_values() {
        // "hello world\n" as in the design notes' captured aws-chunked trailer example.
        assert_eq!(
            checksum(ChecksumAlgorithm::Crc32, b"123456789").raw,
            0xcbf43926u32.to_be_bytes()
        );
        assert_eq!(
            checksum(ChecksumAlgorithm::Crc32c, b"123456789").raw,
            0xe3069283u32.to_be_bytes()
        );
        assert_eq!(
            checksum(ChecksumAlgorithm::Crc64Nvme, b"123456789").raw,
            0xae8b14860a799888u64.to_be_bytes()
        );
        assert_eq!(
            checksum(ChecksumAlgorithm::Sha256, b"").to_base64(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn full_object_combine_equals_whole_crc() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for algo in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            let parts: Vec<_> = data
                .chunks(3000)
                .map(|c| (checksum(algo, c), c.len() as u64))
                .collect();
            assert_eq!(
                combine_full_object(algo, &parts).unwrap(),
                checksum(algo, &data)
            );
        }
        assert!(combine_full_object(ChecksumAlgorithm::Sha1, &[]).is_none());
    }

    #[test]
    fn names_round_trip() {
        for a in ChecksumAlgorithm::ALL {
            assert_eq!(
                ChecksumAlgorithm::from_name(&a.name().to_lowercase()),
                Some(a)
            );
            assert_eq!(ChecksumAlgorithm::from_header(a.header()), Some(a));
        }
    }
}
