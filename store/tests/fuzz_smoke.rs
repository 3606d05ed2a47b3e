//! The CI smoke run of the fuzz targets (`fuzz/`, FUZZING.md): each target's body from
//! `outpost_store::fuzzing` on its committed seeds and two thousand deterministic mutations of
//! each, with neither cargo-fuzz nor a nightly toolchain. A panic here is a fuzz finding.

use std::path::Path;

use outpost_store::fuzzing;

/// Mutations per seed; the whole file runs in about a second in a debug build.
const PER_SEED: usize = 2000;
/// aws_chunked decodes each input twice or three times, one of them in tiny pieces.
const PER_CHUNKED_SEED: usize = 300;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// Runs `body` on every seed (checking which are accepted) and on their mutations.
fn smoke(target: &str, body: fn(&[u8]) -> bool, accepted: &[&str], per_seed: usize) {
    let seeds = seeds(target);
    for (name, data) in &seeds {
        assert_eq!(
            body(data),
            accepted.contains(&name.as_str()),
            "seed {target}/{name}"
        );
    }
    let inputs: Vec<Vec<u8>> = seeds.into_iter().map(|(_, d)| d).collect();
    for input in fuzzing::smoke_inputs(&inputs, per_seed) {
        // Name the input that broke an invariant, so it can become a regression test.
        if let Err(panic) = std::panic::catch_unwind(|| body(&input)) {
            eprintln!("{target} failed on {:?}", input.escape_ascii().to_string());
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn sigv4_header() {
    let aws = [
        "aws_get_lifecycle.txt",
        "aws_get_object.txt",
        "aws_list_objects.txt",
        "aws_put_object.txt",
        "aws_streaming_put.txt",
    ];
    smoke("sigv4_header", fuzzing::sigv4_header, &aws, PER_SEED);
}

#[test]
fn presigned_query() {
    let all = ["aws_presigned_get.txt", "sigv2_presigned_get.txt"];
    smoke("presigned_query", fuzzing::presigned_query, &all, PER_SEED);
}

#[test]
fn aws_chunked() {
    let all = [
        "signed_trailer.bin",
        "signed_two_chunks.bin",
        "unsigned_no_length.bin",
        "unsigned_trailer_crc32.bin",
    ];
    smoke("aws_chunked", fuzzing::aws_chunked, &all, PER_CHUNKED_SEED);
}

#[test]
fn xml_bodies() {
    let all = [
        "complete_multipart_aws_sdk.xml",
        "complete_multipart_s3cmd.xml",
        "cors.xml",
        "create_bucket.xml",
        "delete_objects.xml",
        "website.xml",
    ];
    smoke("xml_bodies", fuzzing::xml_bodies, &all, PER_SEED);
}

#[test]
fn range_conditionals() {
    let ranged = ["range_if_match.txt", "suffix_if_none_match.txt"];
    smoke(
        "range_conditionals",
        fuzzing::range_conditionals,
        &ranged,
        PER_SEED,
    );
}

#[test]
fn bucket_policy() {
    let valid = [
        "conditions_and_deny.json",
        "public_list.json",
        "public_read.json",
    ];
    smoke("bucket_policy", fuzzing::bucket_policy, &valid, PER_SEED);
}

#[test]
fn post_form() {
    let forms = ["browser_sigv4.bin", "fields_after_file.bin"];
    smoke("post_form", fuzzing::post_form, &forms, PER_SEED);
}

/// Found by this smoke run (sigv4_header, "a signed request passed as anonymous"): an
/// Authorization header that is not visible ASCII was skipped and the request went on as
/// anonymous. S3 refuses it as malformed.
#[test]
fn non_ascii_authorization_header_is_refused_not_anonymous() {
    use outpost_store::error::Code;
    use outpost_store::s3::auth::{AuthParams, Credentials, Keyring, SecretKey, authenticate};

    let header = b"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host\x91,Signature=0";
    let (head, ()) = http::Request::get("/b/k")
        .header("host", "localhost")
        .header(
            "authorization",
            http::HeaderValue::from_bytes(header).unwrap(),
        )
        .body(())
        .unwrap()
        .into_parts();
    let keyring = Keyring::new([Credentials {
        access_key_id: fuzzing::EXAMPLE_ACCESS_KEY.into(),
        secret: SecretKey::new(fuzzing::EXAMPLE_SECRET),
    }]);
    let params = AuthParams {
        keyring: &keyring,
        region: "us-east-1",
        bucket: "b",
        now: std::time::SystemTime::now(),
        max_skew: outpost_store::s3::MAX_CLOCK_SKEW,
    };
    let refused = authenticate(&head, &params).err().map(|e| e.code);
    assert_eq!(refused, Some(Code::AuthorizationHeaderMalformed));
}
