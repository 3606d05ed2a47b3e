//! A CompleteMultipartUpload retried after it succeeded, through an edge (issue 10, AWS
//! behaviour 1): the edge has forgotten the upload's spool by then, and the retry must still
//! get the store's first answer, whether it comes through the edge again or straight to the
//! store (a client that switched endpoints).

use crate::common::*;

#[tokio::test]
async fn a_complete_retried_through_the_edge_answers_the_same_etag() {
    let pair = EdgePair::start();
    let bucket = "retry-edge";
    let edge = pair.edge.client();
    edge.create_bucket().bucket(bucket).send().await.unwrap();
    let key = "spooled/object.bin";
    let (p1, p2) = (random_bytes(5 * MIB, 91), random_bytes(777, 92));
    let id = start_upload(&edge, bucket, key).await;
    let parts = upload_parts(&edge, bucket, key, &id, &[&p1, &p2]).await;

    let first = complete_upload(&edge, bucket, key, &id, parts.clone()).await;
    let expected = multipart_etag(&[&p1, &p2]);
    assert_eq!(first.e_tag(), Some(expected.as_str()));
    let again = complete_upload(&edge, bucket, key, &id, parts.clone()).await;
    assert_eq!(again.e_tag(), first.e_tag(), "the retry through the edge");
    let direct = complete_upload(&pair.store.client(), bucket, key, &id, parts).await;
    assert_eq!(
        direct.e_tag(),
        first.e_tag(),
        "the retry straight to the store"
    );
    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    assert!(
        object_bytes(&edge, bucket, key).await == whole,
        "the object is whole, once"
    );
}
