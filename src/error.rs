//! The library's error type: each variant says what went wrong in words a user can act on.

use std::path::PathBuf;

/// Everything that can go wrong in s3share's library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An `s3://bucket/key` argument that is not one.
    #[error("{0:?} is not an S3 location; write it as s3://bucket/key or s3://bucket/prefix/")]
    BadLocation(String),
    /// Two local files that would be uploaded to one key: the second is not uploaded.
    #[error(
        "not uploading {}: it would go to {key:?} like {}; upload it separately or rename it",
        second.display(),
        first.display()
    )]
    SameKey {
        /// The key both would get.
        key: String,
        /// The file that keeps the key.
        first: PathBuf,
        /// The file that is not uploaded.
        second: PathBuf,
    },
    /// No usable credentials.
    #[error(
        "no AWS credentials found ({0}); set AWS_PROFILE or run `aws configure`/`aws sso login`, or use --local for the embedded store"
    )]
    NoCredentials(String),
    /// The credentials were found but have expired.
    #[error(
        "the AWS credentials have expired ({0}); refresh them (e.g. `aws sso login`) and retry"
    )]
    ExpiredCredentials(String),
    /// The server refused the request.
    #[error(
        "access denied to {target}: {message}; check the bucket policy or the credentials' permissions"
    )]
    AccessDenied {
        /// The bucket or key.
        target: String,
        /// The server's message.
        message: String,
    },
    /// The bucket does not exist.
    #[error("bucket {0:?} does not exist (or is not visible to these credentials)")]
    NoSuchBucket(String),
    /// The object does not exist.
    #[error("s3://{bucket}/{key} does not exist")]
    NoSuchKey {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
    /// The object exists and the caller did not allow overwriting it.
    #[error("s3://{bucket}/{key} already exists; choose to overwrite or skip it")]
    AlreadyExists {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
    /// A link lifetime beyond what SigV4 allows.
    #[error(
        "links can last at most 7 days (SigV4 limit); asked for {0}. Use the relay for longer-lived links"
    )]
    ExpiryTooLong(String),
    /// A link lifetime of zero.
    #[error("a link must last at least one second")]
    ExpiryTooShort,
    /// The server could not be reached.
    #[error(
        "cannot reach the S3 endpoint {endpoint}: {message}; check the address and that the server is running"
    )]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// Details.
        message: String,
    },
    /// The server took the connection (or a request) and then went silent: no answer, or no
    /// progress, within the time limits.
    #[error(
        "the S3 endpoint {endpoint} stopped answering ({detail}); check the network and the server, then try again"
    )]
    Unresponsive {
        /// The endpoint.
        endpoint: String,
        /// What was waited for, and how long.
        detail: String,
    },
    /// A local file changed (size, modification time or identity) while it was being uploaded:
    /// what was sent may mix old and new bytes, so nothing of it is kept.
    #[error(
        "{} changed while it was being uploaded to {target}; upload it again when it is complete",
        path.display()
    )]
    Changed {
        /// The local file.
        path: PathBuf,
        /// The `s3://` destination.
        target: String,
    },
    /// Any other error answered by S3.
    #[error("S3 {operation} failed: {message}")]
    S3 {
        /// What was being done.
        operation: String,
        /// The error code and message, with the request id when there is one.
        message: String,
    },
    /// A presigned request got an error status back.
    #[error("{operation} of s3://{bucket}/{key} failed: HTTP {status}: {message}")]
    Http {
        /// What was being done.
        operation: &'static str,
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Status code.
        status: u16,
        /// Error code and message from the body, when S3 sent one.
        message: String,
    },
    /// A local file or folder could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Local {
        /// What was being done ("cannot read").
        what: &'static str,
        /// The local path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key that would land outside the chosen download folder.
    #[error("refusing to download {key:?}: it would be written outside {}", dest.display())]
    UnsafeKey {
        /// The key.
        key: String,
        /// The download folder.
        dest: PathBuf,
    },
    /// Two keys that would land on one local path (`a/b` and `a//b`; `a` and `a/b`).
    #[error(
        "not downloading {key:?}: it needs {}, which {other:?} already takes; download one of them to another folder",
        path.display()
    )]
    PathCollision {
        /// The key left out.
        key: String,
        /// The key that takes the path.
        other: String,
        /// The contested file or folder.
        path: PathBuf,
    },
    /// A file too big for S3 (more than 10,000 parts of 5 GiB).
    #[error("{} is {size} bytes, more than the 5 TiB S3 allows for one object", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The transfer was cancelled by the user.
    #[error("cancelled")]
    Cancelled,
    /// The embedded store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A configuration problem (bad endpoint URL, bad option).
    #[error("{0}")]
    Config(String),
}

/// Shorthand for the library's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The messages of an error and its sources, joined: readable, unlike the SDK's Debug dump.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        // Wrappers often repeat their source's text; keep each piece once.
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}
