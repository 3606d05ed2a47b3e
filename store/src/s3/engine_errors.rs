//! What the engine's failures become on the wire: the one place an engine [`Kind`] turns into
//! an S3 [`Code`]. It lives in the protocol layer, so the engine never speaks S3 and the
//! crate's error type never needs the engine.

use crate::engine::{self, Invalid, Kind, What};
use crate::error::{Code, Error};

/// The one place engine failures become S3 errors. The engine's message, if any, replaces the
/// code's default; its cause goes to the log only. A rejection is the caller's own error
/// (from the body stream or the verify callback), passed back unchanged.
impl From<engine::Error> for Error {
    fn from(e: engine::Error) -> Self {
        if let Some(rejection) = e.rejection {
            return *rejection;
        }
        let code = match e.kind {
            Kind::NotFound(What::Bucket) => Code::NoSuchBucket,
            Kind::NotFound(What::Key) => Code::NoSuchKey,
            Kind::NotFound(What::Upload) => Code::NoSuchUpload,
            Kind::NotFound(What::AccessKey) => Code::NoSuchAccessKey,
            // CreateBucket reports an existing bucket, which the root key owns (a key that
            // does not is told BucketAlreadyExists by the operation); the admin API an
            // existing key name.
            Kind::AlreadyExists => Code::BucketAlreadyOwnedByYou,
            Kind::NotEmpty => Code::BucketNotEmpty,
            Kind::Precondition => Code::PreconditionFailed,
            Kind::Invalid(rule) => match rule {
                Invalid::EmptyKey | Invalid::PartNumber => Code::InvalidArgument,
                Invalid::KeyTooLong => Code::KeyTooLongError,
                Invalid::TooLarge => Code::EntityTooLarge,
                Invalid::PartTooSmall => Code::EntityTooSmall,
                Invalid::NoParts => Code::MalformedXML,
                Invalid::PartOrder => Code::InvalidPartOrder,
                Invalid::PartMismatch => Code::InvalidPart,
                Invalid::ChecksumMismatch => Code::BadDigest,
                Invalid::ChecksumAlgorithm => Code::InvalidRequest,
            },
            Kind::NoSpace => Code::InsufficientStorage,
            Kind::Internal | Kind::Rejected => Code::InternalError,
        };
        Error::from_parts(code, e.message, e.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_kinds_map_to_s3_codes_and_keep_messages() {
        let code = |kind| Error::from(engine::Error::new(kind)).code;
        assert_eq!(code(Kind::NotFound(What::Bucket)), Code::NoSuchBucket);
        assert_eq!(code(Kind::NotFound(What::Key)), Code::NoSuchKey);
        assert_eq!(code(Kind::NotFound(What::Upload)), Code::NoSuchUpload);
        assert_eq!(code(Kind::AlreadyExists), Code::BucketAlreadyOwnedByYou);
        assert_eq!(code(Kind::Precondition), Code::PreconditionFailed);
        assert_eq!(
            code(Kind::Invalid(Invalid::PartMismatch)),
            Code::InvalidPart
        );
        assert_eq!(code(Kind::NoSpace), Code::InsufficientStorage);
        let specific =
            engine::Error::msg(Kind::Invalid(Invalid::EmptyKey), "The object key is empty.");
        let mapped = Error::from(specific);
        assert_eq!(mapped.code, Code::InvalidArgument);
        assert_eq!(mapped.message(), "The object key is empty.");
        // The caller's own error (a body stream's, a verify callback's) comes back unchanged.
        let refused = Error::msg(Code::BadDigest, "mismatch").with_header(http::header::ETAG, "x");
        let back = Error::from(engine::Error::from(refused));
        assert_eq!((back.code, back.message()), (Code::BadDigest, "mismatch"));
        assert_eq!(back.headers.len(), 1);
        // An engine cause stays in the log.
        let io = engine::Error::internal(anyhow::anyhow!("/secret/index.redb"));
        assert!(!Error::from(io).to_xml("/b", "r").contains("secret"));
    }
}
