//! Operations Outpost does not implement, asked through an edge (issue 10, bug 12): the edge
//! passes them on, the client gets the store's 501 naming the operation, and the edge's own
//! metrics count them under their S3 operation name, not as `Unknown`.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};

use crate::common::*;

#[tokio::test]
async fn unsupported_operations_through_the_edge_are_counted_by_name() {
    let pair = EdgePair::start();
    let bucket = "unsupported-edge";
    pair.edge
        .client()
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let s3 = pair.edge.client();
    let e = s3
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect_err("PutBucketVersioning is not implemented");
    let service = e.as_service_error().expect("an S3 error answer");
    assert_eq!(service.code(), Some("NotImplemented"));
    assert!(
        service
            .message()
            .unwrap_or("")
            .contains("PutBucketVersioning"),
        "{service:?}"
    );
    assert_sdk_err(
        s3.get_bucket_tagging().bucket(bucket).send().await,
        501,
        "NotImplemented",
    );

    let name = "outpost_edge_requests_total";
    for operation in ["PutBucketVersioning", "GetBucketTagging"] {
        let n = pair
            .edge
            .metric(name, &[("operation", operation), ("status", "501")])
            .await;
        assert_eq!(n, 1.0, "{operation} at the edge");
    }
    assert_eq!(
        pair.edge.metric(name, &[("operation", "Unknown")]).await,
        0.0
    );
}
