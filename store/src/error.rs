//! The crate's one error type and its mapping to S3 error codes, HTTP statuses and XML.
//!
//! Every failure a client can see is an [`Error`] carrying a [`Code`]. The code decides the
//! status and the `<Code>` element; the message is for humans. Internal causes (I/O, index
//! errors) are kept in `source` for the log and never sent to the client.

use std::borrow::Cow;
use std::fmt;

use http::StatusCode;

macro_rules! codes {
    ($($name:ident => $status:ident, $msg:literal;)*) => {
        /// S3 error codes we answer with (names as AWS spells them).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(clippy::enum_variant_names)]
        pub enum Code { $($name,)* }

        impl Code {
            /// The `<Code>` element text.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$name => stringify!($name),)* }
            }
            /// The HTTP status AWS answers with for this code.
            pub fn status(self) -> StatusCode {
                match self { $(Code::$name => StatusCode::$status,)* }
            }
            /// AWS's standard message for this code.
            pub fn default_message(self) -> &'static str {
                match self { $(Code::$name => $msg,)* }
            }
        }
    };
}

codes! {
    AccessControlListNotSupported => BAD_REQUEST, "The bucket does not allow ACLs";
    AccessDenied => FORBIDDEN, "Access Denied";
    AccessForbidden => FORBIDDEN, "CORSResponse: This CORS request is not allowed.";
    // Not an S3 code: the admin API's answer to a key name already in use.
    AccessKeyAlreadyExists => CONFLICT, "An access key with this name already exists.";
    AuthorizationHeaderMalformed => BAD_REQUEST, "The authorization header is malformed.";
    AuthorizationQueryParametersError => BAD_REQUEST, "Error parsing the X-Amz-Credential parameter.";
    BadRequest => BAD_REQUEST, "Bad Request";
    BadDigest => BAD_REQUEST, "The Content-MD5 or checksum value that you specified did not match what the server received.";
    BucketAlreadyExists => CONFLICT, "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.";
    BucketAlreadyOwnedByYou => CONFLICT, "Your previous request to create the named bucket succeeded and you already own it.";
    BucketNotEmpty => CONFLICT, "The bucket you tried to delete is not empty.";
    EntityTooLarge => BAD_REQUEST, "Your proposed upload exceeds the maximum allowed object size.";
    EntityTooSmall => BAD_REQUEST, "Your proposed upload is smaller than the minimum allowed object size.";
    IncompleteBody => BAD_REQUEST, "You did not provide the number of bytes specified by the Content-Length HTTP header.";
    GatewayTimeout => GATEWAY_TIMEOUT, "The server, acting as a gateway, did not get an answer in time.";
    IncorrectNumberOfFilesInPostRequest => BAD_REQUEST, "POST requires exactly one file upload per request.";
    InternalError => INTERNAL_SERVER_ERROR, "We encountered an internal error. Please try again.";
    // Not an S3 code (S3 never runs out of disk). MinIO answers 507 XMinioStorageFull; 507 is
    // not retried by AWS SDKs, which is right: retrying will not free space.
    InsufficientStorage => INSUFFICIENT_STORAGE, "There is not enough free space on the server to store this request.";
    InvalidAccessKeyId => FORBIDDEN, "The AWS access key Id you provided does not exist in our records.";
    InvalidArgument => BAD_REQUEST, "Invalid Argument";
    InvalidBucketName => BAD_REQUEST, "The specified bucket is not valid.";
    InvalidBucketAclWithObjectOwnership => BAD_REQUEST, "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting";
    InvalidDigest => BAD_REQUEST, "The Content-MD5 you specified is not valid.";
    InvalidLocationConstraint => BAD_REQUEST, "The specified location-constraint is not valid.";
    InvalidPolicyDocument => BAD_REQUEST, "The content of the form does not meet the conditions specified in the policy document.";
    InvalidPart => BAD_REQUEST, "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.";
    InvalidPartOrder => BAD_REQUEST, "The list of parts was not in ascending order. Parts must be ordered by part number.";
    InvalidRange => RANGE_NOT_SATISFIABLE, "The requested range is not satisfiable";
    InvalidRequest => BAD_REQUEST, "Invalid Request";
    InvalidStorageClass => BAD_REQUEST, "The storage class you specified is not valid";
    InvalidURI => BAD_REQUEST, "Couldn't parse the specified URI.";
    KeyTooLongError => BAD_REQUEST, "Your key is too long.";
    // Not an S3 code: an admin API request body that is not the JSON it expects.
    MalformedJSON => BAD_REQUEST, "The request body is not the JSON this call expects.";
    MalformedPOSTRequest => BAD_REQUEST, "The body of your POST request is not well-formed multipart/form-data.";
    MalformedPolicy => BAD_REQUEST, "Policies must be valid JSON and the first byte must be '{'";
    MalformedXML => BAD_REQUEST, "The XML you provided was not well-formed or did not validate against our published schema.";
    MaxPostPreDataLengthExceeded => BAD_REQUEST, "Your POST request fields preceding the upload file were too large.";
    MetadataTooLarge => BAD_REQUEST, "Your metadata headers exceed the maximum allowed metadata size.";
    MethodNotAllowed => METHOD_NOT_ALLOWED, "The specified method is not allowed against this resource.";
    MissingContentLength => LENGTH_REQUIRED, "You must provide the Content-Length HTTP header.";
    // Not an S3 code: the admin API's answer for a key name no key has.
    NoSuchAccessKey => NOT_FOUND, "The access key does not exist.";
    NoSuchBucket => NOT_FOUND, "The specified bucket does not exist.";
    NoSuchBucketPolicy => NOT_FOUND, "The bucket policy does not exist.";
    NoSuchCORSConfiguration => NOT_FOUND, "The CORS configuration does not exist";
    NoSuchKey => NOT_FOUND, "The specified key does not exist.";
    NoSuchPublicAccessBlockConfiguration => NOT_FOUND, "The public access block configuration was not found";
    // Not an S3 code: a change feed confirmation for a subscription the store does not have.
    NoSuchSubscription => NOT_FOUND, "The change feed subscription does not exist (the store restarted, or the feed ended long ago).";
    NoSuchUpload => NOT_FOUND, "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.";
    NoSuchWebsiteConfiguration => NOT_FOUND, "The specified bucket does not have a website configuration.";
    NotImplemented => NOT_IMPLEMENTED, "A header or query you provided implies functionality that is not implemented.";
    NotModified => NOT_MODIFIED, "Not Modified";
    PreconditionFailed => PRECONDITION_FAILED, "At least one of the pre-conditions you specified did not hold.";
    RequestHeaderSectionTooLarge => BAD_REQUEST, "Your request header section exceeds the maximum allowed size.";
    RequestTimeTooSkewed => FORBIDDEN, "The difference between the request time and the server's time is too large.";
    RequestTimeout => BAD_REQUEST, "Your socket connection to the server was not read from or written to within the timeout period.";
    ServiceUnavailable => SERVICE_UNAVAILABLE, "Service is unable to handle request.";
    SignatureDoesNotMatch => FORBIDDEN, "The request signature we calculated does not match the signature you provided. Check your key and signing method.";
    SlowDown => SERVICE_UNAVAILABLE, "Please reduce your request rate.";
    XAmzContentSHA256Mismatch => BAD_REQUEST, "The provided 'x-amz-content-sha256' header does not match what was computed.";
}

/// An S3-visible failure: a code, an optional specific message, and an internal cause for logs.
pub struct Error {
    pub code: Code,
    message: Option<Cow<'static, str>>,
    source: Option<anyhow::Error>,
    /// Headers the error response carries (e.g. `Content-Range: bytes */SIZE` on a 416).
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Extra elements of the error document, as AWS adds them (e.g. `HeadersNotSigned`).
    details: Vec<(&'static str, String)>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: Code) -> Self {
        Error {
            code,
            message: None,
            source: None,
            headers: Vec::new(),
            details: Vec::new(),
        }
    }

    /// An error with a message more specific than the code's default.
    pub fn msg(code: Code, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            code,
            message: Some(message.into()),
            source: None,
            headers: Vec::new(),
            details: Vec::new(),
        }
    }

    /// An internal failure: the client sees `InternalError` (or `InsufficientStorage` when
    /// the cause, anywhere in its chain, is a full disk or quota: wherever in the write path
    /// it happened), the log sees `cause`.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let cause = cause.into();
        let full = cause
            .chain()
            .any(|e| e.downcast_ref::<std::io::Error>().is_some_and(is_disk_full));
        Error {
            source: Some(cause),
            ..Error::new(if full {
                Code::InsufficientStorage
            } else {
                Code::InternalError
            })
        }
    }

    /// An error with its message and cause given whole: for the one mapping of another
    /// layer's failures (`s3::engine_errors`).
    pub(crate) fn from_parts(
        code: Code,
        message: Option<Cow<'static, str>>,
        source: Option<anyhow::Error>,
    ) -> Self {
        Error {
            message,
            source,
            ..Error::new(code)
        }
    }

    /// Adds a header to the error response (values that are not valid headers are dropped).
    pub fn with_header(mut self, name: http::HeaderName, value: &str) -> Self {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    /// Adds an element to the error document after the standard ones.
    pub fn with_detail(mut self, element: &'static str, value: impl Into<String>) -> Self {
        self.details.push((element, value.into()));
        self
    }

    pub fn message(&self) -> &str {
        self.message
            .as_deref()
            .unwrap_or(self.code.default_message())
    }

    /// The internal cause, if any (for logs only).
    pub fn cause(&self) -> Option<&anyhow::Error> {
        self.source.as_ref()
    }

    /// The S3 error document (`<Error>` with Code, Message, the details, Resource, RequestId).
    pub fn to_xml(&self, resource: &str, request_id: &str) -> String {
        let esc = |s: &str| quick_xml::escape::escape(s).into_owned();
        let details: String = self
            .details
            .iter()
            .map(|(element, value)| format!("<{element}>{}</{element}>", esc(value)))
            .collect();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message>{details}<Resource>{}</Resource><RequestId>{}</RequestId></Error>",
            self.code.as_str(),
            esc(self.message()),
            esc(resource),
            esc(request_id),
        )
    }
}

impl From<Code> for Error {
    fn from(code: Code) -> Self {
        Error::new(code)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message())?;
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

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::internal(e)
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        Error::internal(e)
    }
}

/// ENOSPC or EDQUOT: the filesystem (or the user's quota) has no room left.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

macro_rules! internal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self { Error::internal(e) }
        }
    )*};
}
internal_from!(serde_json::Error, tokio::task::JoinError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_aws_statuses() {
        assert_eq!(Code::NoSuchKey.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            Code::InvalidRange.status(),
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        assert_eq!(Code::SlowDown.as_str(), "SlowDown");
    }

    #[test]
    fn a_full_disk_anywhere_in_the_cause_is_insufficient_storage() {
        let enospc = || std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert_eq!(Error::from(enospc()).code, Code::InsufficientStorage);
        let wrapped = anyhow::Error::new(enospc()).context("writing blob");
        assert_eq!(Error::internal(wrapped).code, Code::InsufficientStorage);
        assert_eq!(Code::InsufficientStorage.status().as_u16(), 507);
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(Error::from(other).code, Code::InternalError);
    }

    #[test]
    fn internal_cause_is_not_in_the_xml() {
        let e = Error::internal(anyhow::anyhow!("/secret/path failed"));
        let xml = e.to_xml("/b/k", "req1");
        assert!(xml.contains("<Code>InternalError</Code>"));
        assert!(!xml.contains("secret"));
    }
}
