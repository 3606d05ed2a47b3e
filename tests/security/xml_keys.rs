//! Hole 10: keys with NUL or CR were stored and written raw into XML, so ListObjects and
//! DeleteObjects answers were not well-formed. Keys XML 1.0 cannot carry (NUL and the other
//! C0 controls but tab, LF and CR) are now refused when created; tab, LF and CR are written as
//! character references, so they come back exactly. The SDK's XML parser reads every answer.

use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use crate::common::*;

const CARRIED: [&str; 5] = ["cr\rkey", "lf\nkey", "tab\tkey", "crlf\r\nkey", "end\r"];

#[tokio::test]
async fn keys_xml_cannot_carry_are_refused_when_created() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "xmlkeys").await;
    for server in [&pair.store, &pair.edge] {
        for key in [
            "nul\0key",
            "ctl\u{1}key",
            "esc\u{1b}[31m",
            "ff\u{c}",
            "\u{ffff}",
        ] {
            let path = format!("/{b}/{}", enc_path(key));
            let put = RawRequest::new("PUT", &path)
                .body(b"x".to_vec())
                .sign(server)
                .send(server)
                .await;
            put.assert_error(400, "InvalidArgument");
            let mpu = RawRequest::new("POST", &format!("{path}?uploads"))
                .sign(server)
                .send(server)
                .await;
            mpu.assert_error(400, "InvalidArgument");
            let copy = RawRequest::new("PUT", &path)
                .header("x-amz-copy-source", &format!("/{b}/none"))
                .sign(server)
                .send(server)
                .await;
            copy.assert_error(400, "InvalidArgument");
        }
    }
    let listed = s3
        .list_objects_v2()
        .bucket(&b)
        .send()
        .await
        .expect("listing parses");
    assert_eq!(listed.key_count(), Some(0), "nothing was stored");
}

#[tokio::test]
async fn tab_lf_and_cr_round_trip_through_every_listing() {
    let pair = EdgePair::start();
    let direct = pair.store.client();
    let b = pair.store.bucket(&direct, "xmlcr").await;
    for key in CARRIED {
        put_bytes(&direct, &b, key, key.as_bytes().to_vec()).await;
    }
    let mut expected: Vec<String> = CARRIED.iter().map(|k| k.to_string()).collect();
    expected.sort();
    for s3 in [direct.clone(), pair.edge.client()] {
        let v2 = s3
            .list_objects_v2()
            .bucket(&b)
            .send()
            .await
            .expect("ListObjectsV2 parses");
        let keys: Vec<String> = v2
            .contents()
            .iter()
            .filter_map(|o| o.key().map(String::from))
            .collect();
        assert_eq!(keys, expected);
        let v1 = s3
            .list_objects()
            .bucket(&b)
            .send()
            .await
            .expect("ListObjects parses");
        assert_eq!(v1.contents().len(), CARRIED.len());
        let versions = s3
            .list_object_versions()
            .bucket(&b)
            .send()
            .await
            .expect("versions parse");
        assert_eq!(versions.versions().len(), CARRIED.len());
        for key in CARRIED {
            assert_eq!(object_bytes(&s3, &b, key).await, key.as_bytes());
        }
    }
    // Multipart listings name keys too.
    let id = start_upload(&direct, &b, "up\rload").await;
    let uploads = pair
        .edge
        .client()
        .list_multipart_uploads()
        .bucket(&b)
        .send()
        .await
        .expect("uploads parse");
    assert_eq!(uploads.uploads()[0].key(), Some("up\rload"));
    let parts = direct
        .list_parts()
        .bucket(&b)
        .key("up\rload")
        .upload_id(&id)
        .send()
        .await
        .expect("parts parse");
    assert_eq!(parts.key(), Some("up\rload"));
    // DeleteObjects answers with each key.
    let mut delete = Delete::builder();
    for key in CARRIED {
        delete = delete.objects(ObjectIdentifier::builder().key(key).build().unwrap());
    }
    let out = pair
        .edge
        .client()
        .delete_objects()
        .bucket(&b)
        .delete(delete.build().unwrap())
        .send()
        .await
        .expect("DeleteResult parses");
    let mut deleted: Vec<String> = out
        .deleted()
        .iter()
        .filter_map(|d| d.key().map(String::from))
        .collect();
    deleted.sort();
    assert_eq!(deleted, expected);
}
