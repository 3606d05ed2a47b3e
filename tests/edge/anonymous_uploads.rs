//! The edge's authorisation decision for uploads, taken once in its request context: an
//! anonymous UploadPart is refused at the edge (it would be spooled and answered before any
//! origin sees it), and anonymous ListParts, Complete and Abort go to the store unsigned,
//! which refuses them: the parts the edge holds are never listed to, nor completed for, an
//! anonymous client.

use crate::common::*;

#[tokio::test]
async fn anonymous_upload_requests_are_refused_and_leave_the_upload_intact() {
    let pair = EdgePair::start();
    let edge = pair.edge.client();
    let bucket = pair.edge.bucket(&edge, "anonup").await;
    let id = start_upload(&edge, &bucket, "k").await;
    let part = random_bytes(64 << 10, 1);
    let parts = upload_parts(&edge, &bucket, "k", &id, &[&part]).await;
    let target = |query: &str| format!("/{bucket}/k?{query}uploadId={}", enc_query(&id));
    let anonymous = [
        RawRequest::new("PUT", &target("partNumber=2&")).body(part.clone()),
        RawRequest::new("GET", &target("")),
        RawRequest::new("POST", &target("")).body(format!(
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part></CompleteMultipartUpload>",
            etag_of(&part)
        )),
        RawRequest::new("DELETE", &target("")),
    ];
    for request in anonymous {
        let what = format!("{} {}", request.method, request.target);
        let r = request.send(&pair.edge).await;
        assert_eq!(r.status, 403, "anonymous {what}: {}", r.text());
        assert_eq!(r.code(), "AccessDenied", "anonymous {what}");
    }
    let listed = edge
        .list_parts()
        .bucket(&bucket)
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.parts().len(),
        1,
        "the refused part 2 was not spooled"
    );
    complete_upload(&edge, &bucket, "k", &id, parts).await;
    assert_eq!(object_bytes(&edge, &bucket, "k").await, part);
}
