//! s3share: share files through private S3 buckets.
//!
//! The library is everything but the faces (CLI, desktop app, relay), so that each face only
//! adds a way to drive it:
//!
//! - [`s3`]: connecting ([`s3::ConnectOptions`] → [`s3::Connection`]) and S3 access through
//!   [`s3::S3Client`]: buckets, streamed listings, HEAD, delete, folders;
//! - [`links`]: presigned GET/PUT links with an honest expiry;
//! - [`transfer`]: uploads through presigned URLs (multipart for large files) and confined
//!   downloads, with progress events, retries and cancellation;
//! - [`store`]: the embedded S3-compatible store used when no cloud account is configured;
//! - [`location`]: `s3://bucket/key` arguments;
//! - [`names`]: the order names are shown in (`f2` before `f10`);
//! - [`cli`]: the command-line face;
//! - `app`: the desktop app, only with the default `gui` feature (a build without it links no
//!   windowing or GL libraries).

#[cfg(feature = "gui")]
pub mod app;
pub mod cli;
pub mod error;
pub mod links;
pub mod location;
pub mod names;
pub mod relay;
pub mod s3;
pub mod store;
pub mod transfer;

pub use error::{CredentialProblem, Error, ErrorReport, Result, S3Answer};
pub use location::S3Location;
