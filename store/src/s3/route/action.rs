//! What each operation asks for, in IAM's words: the action a bucket policy names, and the
//! class of grant that covers it (see [`crate::access`]). Action names are those of the AWS
//! Service Authorization Reference for Amazon S3.

use super::Endpoint;
use crate::access::{Action, Class};

impl Endpoint {
    /// The IAM action this operation needs. A copy also needs `s3:GetObject` on its source,
    /// which the copy operation asks for separately.
    pub fn action(&self) -> Action {
        use Class::{Owner, Read, Root, Service, Write};
        use Endpoint::*;
        let (name, class) = match self {
            ListBuckets(_) => ("s3:ListAllMyBuckets", Service),
            Endpoint::CreateBucket => ("s3:CreateBucket", Class::CreateBucket),
            HeadBucket => ("s3:ListBucket", Read),
            DeleteBucket => ("s3:DeleteBucket", Owner),
            GetBucketLocation => ("s3:GetBucketLocation", Read),
            GetBucketVersioning => ("s3:GetBucketVersioning", Read),
            GetBucketAcl => ("s3:GetBucketAcl", Owner),
            PutBucketAcl => ("s3:PutBucketAcl", Owner),
            GetBucketPolicy => ("s3:GetBucketPolicy", Owner),
            PutBucketPolicy => ("s3:PutBucketPolicy", Owner),
            DeleteBucketPolicy => ("s3:DeleteBucketPolicy", Owner),
            GetBucketPolicyStatus => ("s3:GetBucketPolicyStatus", Owner),
            GetPublicAccessBlock => ("s3:GetBucketPublicAccessBlock", Owner),
            // AWS names no separate action for the deletion.
            PutPublicAccessBlock | DeletePublicAccessBlock => {
                ("s3:PutBucketPublicAccessBlock", Owner)
            }
            GetBucketWebsite => ("s3:GetBucketWebsite", Owner),
            PutBucketWebsite => ("s3:PutBucketWebsite", Owner),
            DeleteBucketWebsite => ("s3:DeleteBucketWebsite", Owner),
            GetBucketCors => ("s3:GetBucketCORS", Owner),
            PutBucketCors | DeleteBucketCors => ("s3:PutBucketCORS", Owner),
            ListObjects(_) | ListObjectsV2(_) => ("s3:ListBucket", Read),
            ListObjectVersions(_) => ("s3:ListBucketVersions", Read),
            ListMultipartUploads(_) => ("s3:ListBucketMultipartUploads", Read),
            DeleteObjects | DeleteObject => ("s3:DeleteObject", Write),
            PutObject
            | PostObject
            | CopyObject(_)
            | CreateMultipartUpload
            | UploadPart(_)
            | UploadPartCopy(..)
            | CompleteMultipartUpload(_) => ("s3:PutObject", Write),
            GetObject(_) | HeadObject(_) => ("s3:GetObject", Read),
            GetObjectAttributes => ("s3:GetObjectAttributes", Read),
            GetObjectAcl => ("s3:GetObjectAcl", Read),
            PutObjectAcl => ("s3:PutObjectAcl", Write),
            AbortMultipartUpload(_) => ("s3:AbortMultipartUpload", Write),
            ListParts(_) => ("s3:ListMultipartUploadParts", Write),
            Unsupported(_) => ("s3:*", Root),
        };
        Action { name, class }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ListObjectsV2Params, Query, ReadParams};
    use super::*;

    #[test]
    fn reads_writes_and_settings_have_their_classes() {
        let read = ReadParams::parse(&Query::parse(None)).unwrap();
        let list = ListObjectsV2Params::parse(&Query::parse(Some("list-type=2"))).unwrap();
        let cases = [
            (
                Endpoint::GetObject(read.clone()),
                "s3:GetObject",
                Class::Read,
            ),
            (Endpoint::HeadObject(read), "s3:GetObject", Class::Read),
            (Endpoint::ListObjectsV2(list), "s3:ListBucket", Class::Read),
            (Endpoint::PutObject, "s3:PutObject", Class::Write),
            (Endpoint::PostObject, "s3:PutObject", Class::Write),
            (Endpoint::DeleteObjects, "s3:DeleteObject", Class::Write),
            (
                Endpoint::PutBucketPolicy,
                "s3:PutBucketPolicy",
                Class::Owner,
            ),
            (Endpoint::DeleteBucket, "s3:DeleteBucket", Class::Owner),
            (Endpoint::GetBucketCors, "s3:GetBucketCORS", Class::Owner),
            (Endpoint::PutBucketCors, "s3:PutBucketCORS", Class::Owner),
            (Endpoint::DeleteBucketCors, "s3:PutBucketCORS", Class::Owner),
            (
                Endpoint::CreateBucket,
                "s3:CreateBucket",
                Class::CreateBucket,
            ),
            (
                Endpoint::Unsupported("PutBucketTagging"),
                "s3:*",
                Class::Root,
            ),
        ];
        for (endpoint, name, class) in cases {
            assert_eq!(endpoint.action(), Action { name, class }, "{endpoint:?}");
        }
    }
}
