//! ListParts of parts the edge still holds is written by the store's own writer (issue 10):
//! the upload's ChecksumAlgorithm and ChecksumType, and each part's checksum, as the store
//! answers. The edge's copy of the writer left both out; and since the parts are held because
//! the store is away, the edge must know the upload's settings from the CreateMultipartUpload
//! answer it relayed (a FULL_OBJECT CRC32 upload cannot be told from its parts).

use aws_sdk_s3::operation::list_parts::ListPartsOutput;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType};

use crate::common::*;

/// What a ListParts answer says, as comparable values.
fn listed(out: &ListPartsOutput) -> (Option<String>, Option<String>, Vec<String>) {
    let parts = out
        .parts()
        .iter()
        .map(|p| {
            format!(
                "{:?} {:?} {:?} {:?}",
                p.part_number(),
                p.e_tag(),
                p.size(),
                p.checksum_crc32()
            )
        })
        .collect();
    (
        out.checksum_algorithm().map(|a| a.as_str().to_owned()),
        out.checksum_type().map(|t| t.as_str().to_owned()),
        parts,
    )
}

async fn list(client: &aws_sdk_s3::Client, b: &str, id: &str) -> ListPartsOutput {
    client
        .list_parts()
        .bucket(b)
        .key("k")
        .upload_id(id)
        .send()
        .await
        .expect("ListParts")
}

/// CreateMultipartUpload (CRC32 of `kind`) and two parts through `client`: the upload id.
async fn upload(
    client: &aws_sdk_s3::Client,
    b: &str,
    kind: &ChecksumType,
    data: &[Vec<u8>; 2],
    before_parts: impl FnOnce(),
) -> String {
    let created = client
        .create_multipart_upload()
        .bucket(b)
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .checksum_type(kind.clone())
        .send()
        .await
        .expect("CreateMultipartUpload");
    let id = created.upload_id().unwrap().to_owned();
    before_parts();
    for (i, part) in data.iter().enumerate() {
        client
            .upload_part()
            .bucket(b)
            .key("k")
            .upload_id(&id)
            .part_number(i as i32 + 1)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(body(part.clone()))
            .send()
            .await
            .expect("UploadPart");
    }
    id
}

#[tokio::test]
async fn list_parts_of_spooled_parts_names_the_uploads_checksum_like_the_store() {
    let data = [random_bytes(5 * MIB, 21), random_bytes(1234, 22)];
    for kind in [ChecksumType::Composite, ChecksumType::FullObject] {
        let mut store = TestStore::start();
        let b = store.bucket(&store.client(), "listparts").await;
        // The same upload straight at the store: what its ListParts says.
        let direct = upload(&store.client(), &b, &kind, &data, || {}).await;
        let at_store = listed(&list(&store.client(), &b, &direct).await);
        assert_eq!(at_store.0.as_deref(), Some("CRC32"));
        assert_eq!(at_store.1.as_deref(), Some(kind.as_str()));

        // Through the edge, the store stopped after Create: the parts stay in the spool, and
        // ListParts is answered from it alone.
        let edge = TestStore::start_edge(&[&store], StoreOptions::default());
        let s3 = edge.client();
        let id = upload(&s3, &b, &kind, &data, || store.kill()).await;
        let at_edge = listed(&list(&s3, &b, &id).await);
        assert_eq!(at_edge, at_store, "{kind:?}");
        for (part, data) in at_edge.2.iter().zip(&data) {
            let crc = hash::b64(&hash::crc32(data).to_be_bytes());
            assert!(part.contains(&format!("Some(\"{crc}\")")), "{part}");
        }
    }
}
