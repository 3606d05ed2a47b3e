//! One module per S3 operation group: parse the request → call the engine → build the
//! response. [`dispatch`] is the only place that maps an [`Endpoint`] to its handler.

pub mod acl;
pub mod bucket;
pub mod copy;
pub mod cors;
pub mod delete;
pub mod get;
pub mod list;
pub mod multipart;
pub mod policy;
pub mod post;
pub mod put;

use std::future::Future;
use std::sync::Arc;

use super::route::Endpoint;
use super::{Req, Response, S3, kept_alive};
use crate::error::Result;

/// Runs the operation `endpoint` names, with the parameters it carries.
pub async fn dispatch(s3: &Arc<S3>, req: Req, endpoint: Endpoint) -> Result<Response> {
    use Endpoint::*;
    if endpoint.creates_key() {
        acl::check_headers(
            &req,
            crate::error::Code::AccessControlListNotSupported,
            &s3.owner_id,
        )?;
    }
    match endpoint {
        ListBuckets(p) => bucket::list_buckets(s3, req, p).await,
        CreateBucket => bucket::create_bucket(s3, req).await,
        HeadBucket => bucket::head_bucket(s3, req).await,
        DeleteBucket => bucket::delete_bucket(s3, req).await,
        GetBucketLocation => bucket::get_location(s3, req).await,
        GetBucketVersioning => bucket::get_versioning(s3, req).await,
        GetBucketAcl | GetObjectAcl => acl::get_acl(s3, req).await,
        PutBucketAcl | PutObjectAcl => acl::put_acl(s3, req).await,
        GetBucketPolicy => policy::get_policy(s3, req).await,
        PutBucketPolicy => policy::put_policy(s3, req).await,
        DeleteBucketPolicy => policy::delete_policy(s3, req).await,
        GetBucketPolicyStatus => policy::get_policy_status(s3, req).await,
        GetPublicAccessBlock => policy::get_public_access_block(s3, req).await,
        PutPublicAccessBlock => policy::put_public_access_block(s3, req).await,
        DeletePublicAccessBlock => policy::delete_public_access_block(s3, req).await,
        GetBucketWebsite => policy::get_website(s3, req).await,
        PutBucketWebsite => policy::put_website(s3, req).await,
        DeleteBucketWebsite => policy::delete_website(s3, req).await,
        GetBucketCors => cors::get_cors(s3, req).await,
        PutBucketCors => cors::put_cors(s3, req).await,
        DeleteBucketCors => cors::delete_cors(s3, req).await,
        ListObjects(p) => list::list_objects_v1(s3, req, p).await,
        ListObjectsV2(p) => list::list_objects_v2(s3, req, p).await,
        ListObjectVersions(p) => list::list_object_versions(s3, req, p).await,
        ListMultipartUploads(p) => list::list_multipart_uploads(s3, req, p).await,
        DeleteObjects => delete::delete_objects(s3, req).await,
        DeleteObject => delete::delete_object(s3, req).await,
        PutObject => put::put_object(s3, req).await,
        // Authenticated from its form, it needs the whole request context: see `s3::handle`.
        PostObject => Err(crate::error::Error::internal(anyhow::anyhow!(
            "PostObject is answered by ops::post from its context"
        ))),
        CopyObject(source) => {
            kept(s3, req, |s3, req| async move {
                copy::copy_object(&s3, req, source).await
            })
            .await
        }
        GetObject(p) => get::get_object(s3, req, p, get::Answer::Body).await,
        HeadObject(p) => get::get_object(s3, req, p, get::Answer::Head).await,
        GetObjectAttributes => get::get_object_attributes(s3, req).await,
        CreateMultipartUpload => multipart::create(s3, req).await,
        UploadPart(p) => multipart::upload_part(s3, req, p).await,
        UploadPartCopy(p, source) => {
            kept(s3, req, |s3, req| async move {
                copy::upload_part_copy(&s3, req, p, source).await
            })
            .await
        }
        CompleteMultipartUpload(upload_id) => multipart::complete(s3, req, upload_id).await,
        AbortMultipartUpload(upload_id) => multipart::abort(s3, req, upload_id).await,
        ListParts(p) => multipart::list_parts(s3, req, p).await,
        Unsupported(name) => Err(super::unsupported(name)),
    }
}

/// Copies stream their whole source before they can answer: answered as S3 does a long
/// operation ([`kept_alive`]).
async fn kept<W>(s3: &Arc<S3>, req: Req, op: impl FnOnce(Arc<S3>, Req) -> W) -> Result<Response>
where
    W: Future<Output = Result<Response>> + Send + 'static,
{
    let resource = format!("/{}/{}", req.bucket(), req.key());
    let id = req.id.clone();
    kept_alive::answer(op(Arc::clone(s3), req), resource, id).await
}
