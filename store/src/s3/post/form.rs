//! A browser's `multipart/form-data` body read as a stream (with `multer`, the parser axum's
//! multipart is built on): the fields before the file whole, under one bound; the file part
//! as a stream, never buffered; after the file, only what tells that it ended (the closing
//! boundary, or the headers of a part after it, under the same bound), never the fields
//! there (AWS ignores fields after `file`).
//!
//! The bound: AWS refuses a form whose fields before the file pass 20 KiB
//! (MaxPostPreDataLengthExceeded, `MaxPostPreDataLengthBytes` 20480). Here it counts every byte
//! before the file part (boundaries, part headers and values), so it bounds the number of
//! fields, their size and the parser's buffering alike (a preamble or a part header that never
//! ends cannot grow memory either). Until the file part is found the parser is fed in pieces
//! of `PIECE` (512) bytes, one per poll, so the count is exact to one piece: a form is refused
//! once more than 20 KiB and a piece came without its file part. After the file's end, the
//! count starts again for what follows it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::engine::ByteStream;
use crate::error::{Code, Error, Result};

/// The most bytes a form may send before its file part (AWS: 20 KiB).
pub const MAX_PRE_DATA: usize = 20 * 1024;
/// What the parser is fed at a time before the file part is found.
const PIECE: usize = 512;

/// A form, read up to its file part.
pub struct Form {
    /// The fields before the file, in order, names lower-cased (AWS matches field names
    /// without regard to case).
    pub fields: Vec<(String, String)>,
    /// The file part's `filename` (what `${filename}` stands for), empty when it has none.
    pub filename: String,
    /// The file's bytes, as they arrive. Ends in an error, never cleanly, when the body breaks
    /// off before the file part's delimiter and the `--` or the part header that follows it.
    pub file: ByteStream,
}

impl Form {
    /// The value of the field named `name` (lower-case).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Replaces `${filename}` in every field by the file's name. AWS: "All variables within
    /// the form are expanded prior to validating the POST policy": the metadata and the
    /// redirect too, and the conditions see the result. Doing it twice changes nothing more.
    pub fn expand_filename(&mut self) {
        for (_, value) in &mut self.fields {
            if value.contains("${filename}") {
                *value = value.replace("${filename}", &self.filename);
            }
        }
    }

    /// The form written out again as `multipart/form-data` (its content type and body): the
    /// fields, then the file as it arrives, under a boundary of 32 random hex digits no file
    /// can be made to hold. What the edge sends the store for a form only the store can check
    /// (the signature covers the policy, never the body's bytes). A file name with a quote,
    /// a backslash or a line end, which HTML's encoding would rewrite, is refused.
    pub fn encode(self) -> Result<(String, ByteStream)> {
        if self.filename.contains(['"', '\\', '\r', '\n']) {
            return Err(Error::msg(
                Code::InvalidArgument,
                "The file's name cannot be relayed as it is; rename the file.",
            ));
        }
        let boundary = uuid::Uuid::new_v4().simple().to_string();
        let mut head = String::new();
        for (name, value) in &self.fields {
            head.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        head.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\r\n",
            self.filename
        ));
        // The closing delimiter follows only a file that ended cleanly: after an error the
        // body ends in it, so the store never sees a whole form with a file cut short.
        let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
        let head = futures::stream::once(async move { Ok(Bytes::from(head)) });
        let file_then_tail = futures::stream::unfold(Some((self.file, tail)), |state| async move {
            let (mut file, tail) = state?;
            match file.next().await {
                Some(Ok(piece)) => Some((Ok(piece), Some((file, tail)))),
                Some(Err(e)) => Some((Err(e), None)),
                None => Some((Ok(tail), None)),
            }
        });
        let body = head.chain(file_then_tail).boxed();
        Ok((format!("multipart/form-data; boundary={boundary}"), body))
    }
}

/// Reads `body` up to its file part. PreconditionFailed unless `content_type` is
/// multipart/form-data with a boundary (AWS's answer to any other POST to a bucket);
/// MaxPostPreDataLengthExceeded past [`MAX_PRE_DATA`]; IncorrectNumberOfFilesInPostRequest
/// without a `file` field; InvalidArgument for a field given twice or not UTF-8;
/// MalformedPOSTRequest for a body that is not well-formed.
pub async fn read(content_type: Option<&str>, body: ByteStream) -> Result<Form> {
    let boundary = content_type
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| {
            Error::msg(
                Code::PreconditionFailed,
                "Bucket POST must be of the enclosure-type multipart/form-data",
            )
        })?;
    let phase = Arc::new(AtomicU8::new(FIELDS));
    let feed = Feed {
        body,
        pending: Bytes::new(),
        fed: 0,
        counted: FIELDS,
        yielded: false,
        phase: Arc::clone(&phase),
    };
    let mut multipart = multer::Multipart::new(feed, boundary);
    let mut fields = Vec::new();
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| form_error(e, false))?
            .ok_or_else(|| Error::new(Code::IncorrectNumberOfFilesInPostRequest))?;
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        if name == "file" {
            phase.store(FILE, Ordering::Relaxed);
            let filename = field.file_name().unwrap_or_default().to_owned();
            return Ok(Form {
                fields,
                filename,
                file: file(field, multipart, phase),
            });
        }
        let value = field.bytes().await.map_err(|e| form_error(e, false))?;
        let value = String::from_utf8(value.to_vec()).map_err(|_| {
            Error::msg(
                Code::InvalidArgument,
                format!("The form field {name} is not UTF-8 text."),
            )
        })?;
        // One value per field: the policy checks a field's value, and a second one (another
        // `x-amz-meta-*` value, say) must not slip past it into the object.
        if fields.iter().any(|(n, _)| *n == name) {
            return Err(Error::msg(
                Code::InvalidArgument,
                format!("The form field {name} is given more than once."),
            ));
        }
        fields.push((name, value));
    }
}

/// The file part's bytes, then what follows its delimiter: `--` (the form's end) or the
/// headers of another part (a field after the file, never read). Anything else there (a file
/// holding its own delimiter), or a body that ends there, is not a file's end.
fn file(
    field: multer::Field<'static>,
    multipart: multer::Multipart<'static>,
    phase: Arc<AtomicU8>,
) -> ByteStream {
    futures::stream::unfold(Some((field, multipart, phase)), |state| async move {
        let (mut field, mut multipart, phase) = state?;
        match field.chunk().await {
            Ok(Some(piece)) => Some((Ok(piece), Some((field, multipart, phase)))),
            Ok(None) => {
                // The parser reads on only once the field is dropped.
                drop(field);
                phase.store(AFTER_FILE, Ordering::Relaxed);
                let next = multipart.next_field().await;
                next.err().map(|e| (Err(after_file_error(e)), None))
            }
            Err(e) => Some((Err(form_error(e, true)), None)),
        }
    })
    .boxed()
}

/// Where the parser is, which decides how the body is fed to it ([`Feed`]).
const FIELDS: u8 = 0;
const FILE: u8 = 1;
const AFTER_FILE: u8 = 2;

/// The client body as the parser reads it, one piece per poll: in [`PIECE`]s counted against
/// [`MAX_PRE_DATA`] before the file part and after its end, as it comes in the file.
struct Feed {
    body: ByteStream,
    /// Received, not yet fed.
    pending: Bytes,
    /// Bytes fed in the phase `counted`.
    fed: usize,
    counted: u8,
    /// A piece went out on the last poll: this one yields the task first.
    yielded: bool,
    phase: Arc<AtomicU8>,
}

impl Stream for Feed {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        // The parser reads all it is offered before it parses (and a client faster than the
        // file is written would keep offering): it is offered one piece per poll, with a
        // wake-up between, so it holds at most a piece beyond what it has parsed.
        if std::mem::take(&mut this.yielded) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let phase = this.phase.load(Ordering::Relaxed);
        if phase != this.counted {
            (this.counted, this.fed) = (phase, 0);
        }
        if phase != FILE && this.fed > MAX_PRE_DATA + PIECE {
            return Poll::Ready(Some(Err(match phase {
                FIELDS => too_much_pre_data(),
                _ => not_well_formed("the part after the file has no end"),
            })));
        }
        while this.pending.is_empty() {
            match this.body.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(chunk))) => this.pending = chunk,
                other => return other,
            }
        }
        // Outside the file, in small pieces, counted; in it, as the body comes.
        let piece = if phase == FILE {
            std::mem::take(&mut this.pending)
        } else {
            let piece = this.pending.split_to(this.pending.len().min(PIECE));
            this.fed += piece.len();
            piece
        };
        this.yielded = true;
        Poll::Ready(Some(Ok(piece)))
    }
}

fn too_much_pre_data() -> Error {
    Error::new(Code::MaxPostPreDataLengthExceeded)
        .with_detail("MaxPostPreDataLengthBytes", MAX_PRE_DATA.to_string())
}

/// The parser's failure as the client sees it: the body's own error (the pre-data bound, a
/// slow client, a broken connection) when it is one; a file cut short as IncompleteBody;
/// anything else as MalformedPOSTRequest.
fn form_error(e: multer::Error, in_file: bool) -> Error {
    match e {
        multer::Error::StreamReadFailed(cause) => match cause.downcast::<Error>() {
            Ok(ours) => *ours,
            Err(other) => Error::internal(anyhow::anyhow!("form body: {other}")),
        },
        multer::Error::IncompleteFieldData { .. } | multer::Error::IncompleteStream if in_file => {
            Error::msg(
                Code::IncompleteBody,
                "The POST request body ended before the file's closing boundary.",
            )
        }
        other => not_well_formed(&other.to_string()),
    }
}

/// What follows the file's delimiter is not `--` or a part: the body's own error, or
/// MalformedPOSTRequest (a body ended there, or a file holding its own delimiter).
fn after_file_error(e: multer::Error) -> Error {
    match e {
        multer::Error::StreamReadFailed(_) => form_error(e, true),
        other => not_well_formed(&format!("after the file: {other}")),
    }
}

fn not_well_formed(why: &str) -> Error {
    Error::msg(
        Code::MalformedPOSTRequest,
        format!("The body of your POST request is not well-formed multipart/form-data ({why})."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn body_of(pieces: Vec<Vec<u8>>) -> ByteStream {
        futures::stream::iter(pieces.into_iter().map(|p| Ok(Bytes::from(p)))).boxed()
    }

    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn form(fields: &[(&str, &str)], file: &[u8], after: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in fields {
            out.extend_from_slice(
                format!(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        out.extend_from_slice(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n",
        );
        out.extend_from_slice(file);
        out.extend_from_slice(format!("\r\n{after}--XyZ--\r\n").as_bytes());
        out
    }

    async fn read_all(content_type: &str, body: Vec<Vec<u8>>) -> Result<(Form, Vec<u8>)> {
        let mut form = read(Some(content_type), body_of(body)).await?;
        let mut file = Vec::new();
        while let Some(piece) = form.file.next().await {
            file.extend_from_slice(&piece?);
        }
        Ok((form, file))
    }

    #[tokio::test]
    async fn fields_before_the_file_then_the_file_as_a_stream() {
        let body = form(
            &[("Key", "up/${filename}"), ("x-amz-meta-a", "b")],
            b"hello",
            "",
        );
        let (form, file) = read_all(CT, vec![body]).await.unwrap();
        assert_eq!(
            form.fields,
            [
                ("key".to_owned(), "up/${filename}".to_owned()),
                ("x-amz-meta-a".to_owned(), "b".to_owned())
            ]
        );
        assert_eq!(form.filename, "a.txt");
        assert_eq!(file, b"hello");
    }

    /// What the edge relays reads back as the form it read, and a file cut short stays cut
    /// short: no closing delimiter follows its error.
    #[tokio::test]
    async fn an_encoded_form_reads_back_the_same() {
        let file = b"--XyZ\r\n not the end".repeat(1000);
        let body = form(
            &[("key", "up/${filename}"), ("x-amz-meta-a", "b\r\nc")],
            &file,
            "",
        );
        let read_once = read(Some(CT), body_of(vec![body.clone()])).await.unwrap();
        let (content_type, encoded) = read_once.encode().unwrap();
        let encoded: Vec<u8> = encoded.map(|piece| piece.unwrap().to_vec()).concat().await;
        let (again, again_file) = read_all(&content_type, vec![encoded]).await.unwrap();
        let (first, _) = read_all(CT, vec![body.clone()]).await.unwrap();
        assert_eq!(again.fields, first.fields);
        assert_eq!(again.filename, "a.txt");
        assert_eq!(again_file, file);

        let cut = body[..body.len() - 200].to_vec();
        let short = read(Some(CT), body_of(vec![cut])).await.unwrap();
        let (_, encoded) = short.encode().unwrap();
        let pieces: Vec<Result<Bytes>> = encoded.collect().await;
        assert!(pieces.last().unwrap().is_err(), "ends in the file's error");
        let sent: Vec<u8> = pieces.iter().flatten().flat_map(|p| p.to_vec()).collect();
        assert!(!String::from_utf8_lossy(&sent).trim_end().ends_with("--"));

        let mut odd = read(Some(CT), body_of(vec![body])).await.unwrap();
        odd.filename = "a\"b.txt".into();
        assert_eq!(odd.encode().err().unwrap().code, Code::InvalidArgument);
    }

    #[tokio::test]
    async fn a_field_given_twice_is_refused() {
        let body = form(
            &[("x-amz-meta-a", "good"), ("X-Amz-Meta-A", "evil")],
            b"f",
            "",
        );
        let e = read_all(CT, vec![body]).await.err().unwrap();
        assert_eq!(e.code, Code::InvalidArgument);
        assert!(e.message().contains("x-amz-meta-a"), "{}", e.message());
    }

    #[tokio::test]
    async fn fields_after_the_file_are_never_read() {
        let after = "--XyZ\r\nContent-Disposition: form-data; name=\"acl\"\r\n\r\npublic-read\r\n";
        let body = form(&[("key", "k")], b"data", after);
        let (form, file) = read_all(CT, vec![body]).await.unwrap();
        assert_eq!(form.fields.len(), 1);
        assert_eq!(file, b"data");
    }

    #[tokio::test]
    async fn a_body_that_is_not_a_form_or_has_no_file_is_refused() {
        let e = read(Some("application/json"), body_of(vec![]))
            .await
            .err()
            .unwrap();
        assert_eq!(e.code, Code::PreconditionFailed);
        let e = read(None, body_of(vec![])).await.err().unwrap();
        assert_eq!(e.code, Code::PreconditionFailed);
        let no_file =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--XyZ--\r\n";
        let e = read(Some(CT), body_of(vec![no_file.to_vec()]))
            .await
            .err()
            .unwrap();
        assert_eq!(e.code, Code::IncorrectNumberOfFilesInPostRequest);
    }

    #[tokio::test]
    async fn fields_past_20_kib_before_the_file_are_refused_in_any_segmentation() {
        let big = "v".repeat(MAX_PRE_DATA + PIECE);
        let body = form(&[("key", "k"), ("x-ignore-pad", &big)], b"f", "");
        for segment in [body.len(), 1 << 16, 7] {
            let pieces = body.chunks(segment).map(<[u8]>::to_vec).collect();
            let e = read(Some(CT), body_of(pieces)).await.err().unwrap();
            assert_eq!(e.code, Code::MaxPostPreDataLengthExceeded, "{segment}");
        }
        // A preamble that never reaches a boundary is bounded the same way.
        let e = read(Some(CT), body_of(vec![vec![b'x'; 1 << 20]]))
            .await
            .err()
            .unwrap();
        assert_eq!(e.code, Code::MaxPostPreDataLengthExceeded);
        // Just under the bound, with the file in the same large chunk, passes.
        let fits = "v".repeat(MAX_PRE_DATA - 300);
        let body = form(&[("key", "k"), ("x-ignore-pad", &fits)], &[7; 200_000], "");
        let (_, file) = read_all(CT, vec![body]).await.unwrap();
        assert_eq!(file.len(), 200_000);
    }

    #[tokio::test]
    async fn a_file_cut_short_ends_in_an_error() {
        let mut body = form(&[("key", "k")], &[1; 5000], "");
        body.truncate(body.len() - 20);
        let e = read_all(CT, vec![body]).await.err().unwrap();
        assert_eq!(e.code, Code::IncompleteBody);
    }

    /// File bytes that look like the boundary without being its delimiter (no CRLF before
    /// it, another last letter, a prefix of it just before the real one).
    const NEAR_MISSES: &[u8] = b"--XyZ\r\n a\r\n--XyQ b\r\n-XyZ c\r\n--Xy\r\n d\r\r\n--X";

    #[tokio::test]
    async fn a_boundary_split_across_reads_at_every_offset_is_found() {
        let body = form(&[("key", "k")], NEAR_MISSES, "");
        for at in 0..=body.len() {
            let pieces = vec![body[..at].to_vec(), body[at..].to_vec()];
            let (form, file) = read_all(CT, pieces).await.unwrap();
            assert_eq!(
                (form.fields.len(), file.as_slice()),
                (1, NEAR_MISSES),
                "{at}"
            );
        }
        let bytes = body.iter().map(|b| vec![*b]).collect();
        let (_, file) = read_all(CT, bytes).await.unwrap();
        assert_eq!(file, NEAR_MISSES);
    }

    /// A body cut anywhere before the file's delimiter (`CRLF--boundary`) and what must
    /// follow it (`--`, or another part) is an error, never a short file. (A body cut right
    /// after the delimiter was taken for a whole file.)
    #[tokio::test]
    async fn a_body_cut_at_any_offset_never_ends_the_file_early() {
        let after = "--XyZ\r\nContent-Disposition: form-data; name=\"late\"\r\n\r\nv\r\n";
        for after in ["", after] {
            let body = form(&[("key", "k")], NEAR_MISSES, after);
            let whole = match after {
                "" => body.len() - b"\r\n".len(),
                _ => body.len() - b"v\r\n--XyZ--\r\n".len(),
            };
            for cut in 0..=body.len() {
                match read_all(CT, vec![body[..cut].to_vec()]).await {
                    Ok((_, file)) => {
                        assert!(cut >= whole, "{cut}: a file of {} bytes", file.len());
                        assert_eq!(file, NEAR_MISSES, "{cut}");
                    }
                    Err(e) => assert!(cut < whole, "{cut}: {}", e.message()),
                }
            }
        }
    }

    /// A file holding its own delimiter followed by anything but `--` or a new part is not
    /// well-formed, rather than a file cut there. (It was stored cut short.)
    #[tokio::test]
    async fn a_delimiter_inside_the_file_is_refused_not_a_short_file() {
        let body = form(&[("key", "k")], b"before\r\n--XyZ-after", "");
        let e = read_all(CT, vec![body]).await.err().unwrap();
        assert_eq!(e.code, Code::MalformedPOSTRequest, "{}", e.message());
    }

    /// Whatever follows the file is read only to its next part's headers, under the same
    /// bound as the fields before it.
    #[tokio::test]
    async fn a_part_header_after_the_file_that_never_ends_is_bounded() {
        let mut body = form(&[("key", "k")], b"data", "");
        body.truncate(body.len() - b"--\r\n".len());
        body.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"x\"");
        body.extend(std::iter::repeat_n(b'x', 1 << 20));
        let e = read_all(CT, vec![body]).await.err().unwrap();
        assert_eq!(e.code, Code::MalformedPOSTRequest, "{}", e.message());
    }

    #[tokio::test]
    async fn bare_lf_line_ends_are_refused() {
        let lf: Vec<u8> = String::from_utf8(form(&[("key", "k")], b"data", ""))
            .unwrap()
            .replace("\r\n", "\n")
            .into_bytes();
        let e = read_all(CT, vec![lf]).await.err().unwrap();
        assert_eq!(e.code, Code::MalformedPOSTRequest, "{}", e.message());
        // CRLF fields, then a file closed with a bare LF: cut short, not a file.
        let mut mixed = form(&[("key", "k")], b"data", "");
        mixed.truncate(mixed.len() - b"\r\n--XyZ--\r\n".len());
        mixed.extend_from_slice(b"\n--XyZ--\n");
        let e = read_all(CT, vec![mixed]).await.err().unwrap();
        assert_eq!(e.code, Code::IncompleteBody);
    }

    #[tokio::test]
    async fn a_thousand_fields_are_bounded_and_a_second_file_is_never_read() {
        let names: Vec<String> = (0..1000).map(|i| format!("x-ignore-{i}")).collect();
        let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
        let e = read_all(CT, vec![form(&many, b"f", "")])
            .await
            .err()
            .unwrap();
        assert_eq!(e.code, Code::MaxPostPreDataLengthExceeded);
        let second = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b\"\r\n\r\nother\r\n";
        let (form, file) = read_all(CT, vec![form(&[("key", "k")], b"first", second)])
            .await
            .unwrap();
        assert_eq!(
            (form.filename.as_str(), file.as_slice()),
            ("a.txt", &b"first"[..])
        );
    }

    /// Random and truncated forms never panic: each is a form, or an error.
    #[tokio::test]
    async fn random_and_truncated_input_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_f0e4);
        let good = form(&[("key", "k"), ("policy", "p")], b"file bytes", "");
        for round in 0..3000 {
            let body = super::super::mangle::mangled(&mut rng, &good, round);
            let split = rng.random_range(1..=body.len().max(1));
            let pieces = body.chunks(split).map(<[u8]>::to_vec).collect();
            let _ = read_all(CT, pieces).await;
        }
    }
}
