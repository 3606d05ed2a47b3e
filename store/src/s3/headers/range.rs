//! The Range header of reads (RFC 9110 §14.2, with what S3 ignores).

use std::ops::Range;

use http::header;

use crate::error::{Code, Error, Result};

/// Parses a Range header against an object of `size` bytes. `Ok(None)` means "serve the whole
/// object": no header, or one S3 ignores (not `bytes=`, several ranges, garbled numbers).
/// Unsatisfiable ranges are InvalidRange (416).
pub fn parse_range(value: Option<&str>, size: u64) -> Result<Option<Range<u64>>> {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let Ok(suffix) = end.parse::<u64>() else {
            return Ok(None);
        };
        if suffix == 0 {
            return Err(unsatisfiable(size));
        }
        size.saturating_sub(suffix)..size
    } else {
        let Ok(first) = start.parse::<u64>() else {
            return Ok(None);
        };
        let last = if end.is_empty() {
            size.saturating_sub(1)
        } else {
            match end.parse::<u64>() {
                Ok(last) if last >= first => last.min(size.saturating_sub(1)),
                _ => return Ok(None),
            }
        };
        if first >= size {
            return Err(unsatisfiable(size));
        }
        first..last + 1
    };
    if range.is_empty() {
        return Err(unsatisfiable(size));
    }
    Ok(Some(range))
}

/// 416 InvalidRange, with the object size in `Content-Range: bytes */SIZE` (RFC 9110 15.5.17).
pub fn unsatisfiable(size: u64) -> Error {
    Error::new(Code::InvalidRange).with_header(header::CONTENT_RANGE, &format!("bytes */{size}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100).unwrap(), Some(0..10));
        assert_eq!(parse_range(Some("bytes=90-"), 100).unwrap(), Some(90..100));
        assert_eq!(parse_range(Some("bytes=-10"), 100).unwrap(), Some(90..100));
        assert_eq!(parse_range(Some("bytes=-500"), 100).unwrap(), Some(0..100));
        assert_eq!(
            parse_range(Some("bytes=50-5000"), 100).unwrap(),
            Some(50..100)
        );
        assert_eq!(
            parse_range(Some("bytes=100-"), 100).unwrap_err().code,
            Code::InvalidRange
        );
        assert_eq!(
            parse_range(Some("bytes=-0"), 100).unwrap_err().code,
            Code::InvalidRange
        );
        assert_eq!(
            parse_range(Some("bytes=0-"), 0).unwrap_err().code,
            Code::InvalidRange
        );
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 100).unwrap(), None);
        assert_eq!(parse_range(Some("items=0-1"), 100).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=9-3"), 100).unwrap(), None);
        assert_eq!(parse_range(None, 100).unwrap(), None);
    }
}
