//! PostObject: a browser form upload, checked by the protocol kit ([`crate::s3::post`]) and
//! stored as a PutObject (atomically: a form cut short or outside its policy stores nothing).

use std::sync::Arc;

use crate::error::Result;
use crate::s3::context::Context;
use crate::s3::{Req, Response, S3, authorize, post};

pub async fn post_object(s3: &Arc<S3>, context: Context) -> Result<Response> {
    let (body, _) = context.body.into_stream();
    let upload = post::accept(&**s3, &context.parts, &context.route, body).await?;
    let location = post::location(&context.parts, &upload.route);
    let scheme = crate::s3::context::scheme(&context.parts);
    let facts = authorize::facts(s3, &context.parts, &upload.route, &upload.access);
    let (req, answer, route) = Req::upload(context.id, scheme, facts, upload);
    let info = super::put::store(s3, req).await?;
    Ok(answer.response(&route, &info.etag, &location))
}
