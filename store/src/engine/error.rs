//! What the engine reports, in its own words: a [`Kind`] saying what went wrong with the
//! storage request, an optional message for humans, and an internal cause for the log.
//!
//! The engine never names S3 error codes. The protocol layer maps each kind to its S3 code
//! in one place (`From<engine::Error> for crate::error::Error`, in `crate::s3::engine_errors`), and a
//! client sees the message only if the engine gave one (causes never leave the log).

use std::borrow::Cow;
use std::fmt;

/// The things a request names that may be missing or already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum What {
    Bucket,
    /// An object, or the version of it a read looked up (replaced while being read).
    Key,
    /// A multipart upload (unknown, aborted, completed long ago, or of another key).
    Upload,
    /// An access key, by name or id (`engine/keys.rs`).
    AccessKey,
}

/// Request rules the engine enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Invalid {
    /// An empty object key.
    EmptyKey,
    /// A key longer than [`super::MAX_KEY_LEN`] bytes.
    KeyTooLong,
    /// A part number outside 1..=10000.
    PartNumber,
    /// A body longer than `max_object_size`.
    TooLarge,
    /// A part other than the last is under [`super::MIN_PART_SIZE`].
    PartTooSmall,
    /// A CompleteMultipartUpload that lists no part.
    NoParts,
    /// Listed part numbers are not strictly ascending.
    PartOrder,
    /// A listed part was not uploaded, or its ETag or checksum differs from the stored one.
    PartMismatch,
    /// The whole-object checksum declared on completion differs from the computed one.
    ChecksumMismatch,
    /// A checksum algorithm or type the upload cannot use (FULL_OBJECT without a CRC, a
    /// declared algorithm the upload was not created with).
    ChecksumAlgorithm,
}

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    NotFound(What),
    /// The bucket, or the access key name, to create exists.
    AlreadyExists,
    /// A bucket that still holds objects cannot be deleted.
    NotEmpty,
    /// A write's condition ([`super::WriteCondition`]) did not hold; nothing was written.
    Precondition,
    Invalid(Invalid),
    /// The disk (or quota) holding the data is full.
    NoSpace,
    /// I/O or index failure; the cause is for the log only.
    Internal,
    /// The caller's body stream or `verify` callback failed; its own error is passed back
    /// unchanged.
    Rejected,
}

/// An engine failure. See the module documentation.
/// Fields are crate-visible for the one mapping to S3 errors in `crate::s3::engine_errors`.
pub struct Error {
    pub(crate) kind: Kind,
    pub(crate) message: Option<Cow<'static, str>>,
    pub(crate) source: Option<anyhow::Error>,
    /// The caller's own error, for [`Kind::Rejected`].
    pub(crate) rejection: Option<Box<crate::error::Error>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind) -> Self {
        Error {
            kind,
            message: None,
            source: None,
            rejection: None,
        }
    }

    /// An error with a message more specific than the kind says.
    pub fn msg(kind: Kind, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            message: Some(message.into()),
            ..Error::new(kind)
        }
    }

    pub fn not_found(what: What) -> Self {
        Error::new(Kind::NotFound(what))
    }

    pub fn invalid(rule: Invalid) -> Self {
        Error::new(Kind::Invalid(rule))
    }

    /// An internal failure; [`Kind::NoSpace`] when the cause, anywhere in its chain, is a full
    /// disk or quota (wherever in the write path it happened).
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let cause = cause.into();
        let full = cause.chain().any(|e| {
            e.downcast_ref::<std::io::Error>().is_some_and(crate::error::is_disk_full)
                || matches!(e.downcast_ref::<redb::Error>(), Some(redb::Error::Io(io)) if crate::error::is_disk_full(io))
        });
        Error {
            source: Some(cause),
            ..Error::new(if full { Kind::NoSpace } else { Kind::Internal })
        }
    }

    /// The same kind, message and cause (as text), for telling several waiters about one
    /// failure (a group commit that failed). A rejection is the caller's own and never shared.
    pub(super) fn duplicate(&self) -> Error {
        Error {
            kind: self.kind,
            message: self.message.clone(),
            source: self.source.as_ref().map(|c| anyhow::anyhow!("{c:#}")),
            rejection: None,
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The specific message, if the engine gave one.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The internal cause, if any (for logs only).
    pub fn cause(&self) -> Option<&anyhow::Error> {
        self.source.as_ref()
    }
}

/// The caller's body stream or verify callback refused: pass its error through untouched.
impl From<crate::error::Error> for Error {
    fn from(e: crate::error::Error) -> Self {
        Error {
            rejection: Some(Box::new(e)),
            ..Error::new(Kind::Rejected)
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(rejection) = &self.rejection {
            return write!(f, "rejected: {rejection:?}");
        }
        write!(f, "{:?}", self.kind)?;
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(cause) = &self.source {
            write!(f, " ({cause:#})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for Error {}

macro_rules! internal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self { Error::internal(e) }
        }
    )*};
}
internal_from!(
    std::io::Error,
    object_store::Error,
    redb::Error,
    serde_json::Error,
    tokio::task::JoinError
);

/// redb's error types all fold into `redb::Error`, whose `Io` variant [`Error::internal`]
/// inspects (they do not expose their I/O cause as a `source`).
macro_rules! redb_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self { Error::internal(redb::Error::from(e)) }
        }
    )*};
}
redb_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_anywhere_in_the_cause_is_no_space() {
        let enospc = || std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert_eq!(Error::from(enospc()).kind(), Kind::NoSpace);
        let commit = redb::CommitError::Storage(redb::StorageError::Io(enospc()));
        assert_eq!(Error::from(commit).kind(), Kind::NoSpace);
        let wrapped = anyhow::Error::new(enospc()).context("writing blob");
        assert_eq!(Error::internal(wrapped).kind(), Kind::NoSpace);
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(Error::from(other).kind(), Kind::Internal);
    }
}
