//! Buckets: create, settings, delete (empty only).

use super::*;

#[tokio::test]
async fn buckets() {
    let (dir, engine) = setup().await;
    assert_eq!(
        kind(engine.create_bucket("b", BucketSettings::default()).await),
        Kind::AlreadyExists
    );
    engine
        .create_bucket("a", BucketSettings::default())
        .await
        .unwrap();
    let names: Vec<_> = engine
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    let settings = BucketSettings {
        policy: Some("{}".into()),
        public_read_acl: true,
        website: None,
        public_access_block: Some(crate::access::PublicAccessBlock {
            restrict_public_buckets: true,
            ..Default::default()
        }),
        cors: Some("<CORSConfiguration/>".into()),
    };
    engine
        .set_bucket_settings("a", settings.clone())
        .await
        .unwrap();
    assert_eq!(engine.bucket("a").await.unwrap().settings, settings);
    assert_eq!(
        kind(engine.set_bucket_settings("z", settings).await),
        Kind::NotFound(What::Bucket)
    );

    put(&engine, "k", b"x").await.unwrap();
    let up = engine
        .create_upload("b", "m", ObjectHeaders::default(), None)
        .await
        .unwrap();
    engine
        .upload_part("b", "m", &up.upload_id, 1, body(b"part"), ok())
        .await
        .unwrap();
    assert_eq!(kind(engine.delete_bucket("b").await), Kind::NotEmpty);
    assert_eq!(
        kind(engine.delete_bucket("zz").await),
        Kind::NotFound(What::Bucket)
    );
    engine
        .delete_object("b", "k", WriteCondition::default())
        .await
        .unwrap();
    engine.delete_bucket("b").await.unwrap();
    assert_eq!(kind(engine.bucket("b").await), Kind::NotFound(What::Bucket));
    assert!(
        blob_files(dir.path()).is_empty(),
        "uploads aborted with the bucket"
    );
    // A write racing the delete fails at commit rather than resurrecting the bucket.
    assert_eq!(
        kind(put(&engine, "k", b"x").await),
        Kind::NotFound(What::Bucket)
    );
}
