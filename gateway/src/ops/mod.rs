//! The S3 operations the edge does not answer from its cache: [`multipart`] (the client side
//! of uploads, held in the spool), [`post`] (browser form uploads, checked here and relayed as
//! a PutObject) and [`forward`] (everything else, passed to the origin).

pub mod forward;
pub mod multipart;
pub mod post;
