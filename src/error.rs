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
    /// Credentials that are missing, expired, refused by the server or that could not be
    /// fetched: the user fixes these by signing in again or choosing other credentials, so
    /// faces can offer that (see [`Error::credential_problem`]).
    #[error("{}", credentials_message(*problem, detail))]
    Credentials {
        /// What is wrong with them.
        problem: CredentialProblem,
        /// What was found out, in words (the provider's or the server's message).
        detail: String,
        /// The server's answer, when the server refused them.
        answer: Option<Box<S3Answer>>,
    },
    /// The server refused the request: the credentials are fine but lack the permission.
    #[error(
        "access denied to {target}: {}; check the bucket policy or the credentials' permissions",
        answer.describe(false)
    )]
    AccessDenied {
        /// The bucket or key.
        target: String,
        /// The server's answer.
        answer: Box<S3Answer>,
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
    /// The server could not be reached (or could not be trusted).
    #[error(
        "cannot reach the S3 endpoint {endpoint}: {message}; {}",
        unreachable_advice(message)
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
    /// The server answered an SDK call with success, but not with S3's answer to it. A server
    /// that does not take the bucket in the host name answers a virtual-hosted request so: it
    /// sees a request for itself (a `GET /` lists its buckets).
    #[error(
        "S3 {operation} failed: the server answered {answer} but not with S3's answer to it. \
         Check that the endpoint is an S3 server; if it is one that does not take buckets in \
         the host name (many S3-compatible servers do not), use path-style addressing \
         (--path-style, or \"Path-style addressing\" in the app's connection)"
    )]
    NotAnS3Answer {
        /// What was being done, and on what.
        operation: String,
        /// The server's answer.
        answer: Box<S3Answer>,
    },
    /// Any other error answered by S3 to an SDK call.
    #[error("S3 {operation} failed: {answer}")]
    Service {
        /// What was being done, and on what.
        operation: String,
        /// The server's answer.
        answer: Box<S3Answer>,
    },
    /// An S3 request that failed without an answer to quote: the server's answer was not what
    /// S3 sends, or the failure happened around the request (an abort that failed).
    #[error("S3 {operation} failed: {message}")]
    S3 {
        /// What was being done.
        operation: String,
        /// What went wrong.
        message: String,
    },
    /// An upload that failed (`cause`) and whose unfinished multipart upload could not be
    /// aborted either: it stays on the server. The cause keeps its facts (a credential
    /// problem, the server's answer), so the app can still offer to sign in again.
    #[error(
        "S3 upload of {target} failed: {}; the unfinished multipart upload {upload_id} could not be aborted ({abort}){} it may keep costing storage until a lifecycle rule removes it",
        unaborted_cause(cause),
        if *resumable { "; run the same upload again to resume it, or" } else { "" }
    )]
    Unaborted {
        /// `s3://bucket/key`.
        target: String,
        /// Why the upload failed.
        cause: Box<Error>,
        /// The upload left behind.
        upload_id: String,
        /// Why the abort failed.
        abort: String,
        /// Whether running the same upload again resumes it (its record was kept).
        resumable: bool,
    },
    /// A request that kept failing in ways worth another try (a 5xx, a throttle, a dropped
    /// connection) until its retries ran out.
    #[error("S3 {operation} failed: gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        /// What was being done, and on what.
        operation: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure, in words.
        last: String,
        /// The server's last answer, when the last failure was one (not a dropped connection).
        answer: Option<Box<S3Answer>>,
    },
    /// A presigned request got an error status back.
    #[error("{operation} of s3://{bucket}/{key} failed: {answer}")]
    Http {
        /// What was being done.
        operation: &'static str,
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// The server's answer (its status is always there).
        answer: Box<S3Answer>,
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
    /// A stream (standard input) longer than an upload of unknown length can carry.
    #[error(
        "{} goes on beyond {limit} bytes, the most an upload of unknown length holds in S3's 10,000 parts; save it to a file and upload the file",
        path.display()
    )]
    StreamTooLarge {
        /// What names the stream (`-`).
        path: PathBuf,
        /// The most it could have been.
        limit: u64,
    },
    /// The transfer was cancelled by the user.
    #[error("cancelled")]
    Cancelled,
    /// Standard output's reader went away (`| head` had what it wanted): a command stops
    /// there, quietly, as `cat` or `ls` would.
    #[error("standard output was closed by its reader")]
    OutputClosed,
    /// The embedded store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A local file whose name cannot become a key.
    #[error("{} {why}", path.display())]
    UnusableName {
        /// The file.
        path: PathBuf,
        /// What is wrong with its name, and what to do.
        why: &'static str,
    },
    /// A file whose key would be longer than S3 allows.
    #[error("not uploaded: {} would get a key of {bytes} bytes, and S3 keys are at most 1024 bytes (UTF-8): choose a shorter destination, or shorten its name or its folders' names", path.display())]
    KeyTooLong {
        /// The file.
        path: PathBuf,
        /// The key's length in bytes.
        bytes: usize,
    },
    /// A path that is neither a file nor a folder (a named pipe, a socket, a device): reading
    /// it could wait forever or never end, so it is not uploaded.
    #[error("not uploaded: {} is {kind}, neither a file nor a folder", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead ("a named pipe", ...).
        kind: &'static str,
    },
    /// A symbolic link whose target does not exist.
    #[error("not uploaded: {} is a symbolic link to {}, which does not exist", path.display(), target.display())]
    BrokenLink {
        /// The link.
        path: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// A symlinked folder inside a folder being uploaded: not followed, and said so.
    #[error("not uploaded: {} is a symbolic link to a folder, which is not followed (its files live elsewhere, and links can loop); to upload them, upload that folder itself", path.display())]
    SymlinkedFolder {
        /// The link.
        path: PathBuf,
    },
    /// A background task (hashing a file, a worker) panicked or was stopped.
    #[error("{task} task failed: {detail}")]
    TaskFailed {
        /// What the task did ("hashing").
        task: &'static str,
        /// The join error.
        detail: String,
    },
    /// A socket that could not be opened or read (the relay's listener).
    #[error("cannot listen on {address}: {reason}{}", listen_hint(reason))]
    Listen {
        /// The address asked for.
        address: String,
        /// The I/O error: in the message only, not a source, so that printing the error with
        /// its sources (`{:#}`) does not say it twice.
        reason: std::io::Error,
    },
    /// An object s3share keeps in the bucket (a link record, the revocation list) that cannot
    /// be read back.
    #[error("{0}")]
    Damaged(String),
    /// A relay link id that the bucket's ledger does not hold.
    #[error(
        "no relay link with id {id:?} in bucket {bucket:?} (see `s3share links s3://{bucket}`)"
    )]
    UnknownLink {
        /// The id asked for.
        id: String,
        /// The bucket whose ledger was read.
        bucket: String,
    },
    /// What the relay cannot do: it is off, or the key is one it refuses to serve.
    #[error("{0}")]
    Relay(String),
    /// Something s3share itself got wrong (a request it built badly): not the user's doing.
    #[error("{0} (this is a bug in s3share; please report it)")]
    Bug(String),
    /// A configuration problem (bad endpoint URL, bad option, bad relay secret).
    #[error("{0}")]
    Config(String),
}

/// What is wrong with the credentials, as a face needs to know it to offer the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialProblem {
    /// None were found (no profile, no environment variables, an unknown profile).
    Missing,
    /// They have expired (a session or SSO sign-in that ended).
    Expired,
    /// The server does not accept them: an unknown access key or a wrong secret key.
    Rejected,
    /// The provider could not produce them (an SSO session that needs signing in again, a
    /// credential process that failed, a provider that timed out).
    Unavailable,
}

fn credentials_message(problem: CredentialProblem, detail: &str) -> String {
    match problem {
        CredentialProblem::Missing => format!(
            "no AWS credentials found ({detail}); set AWS_PROFILE or run `aws configure`/`aws sso login`, or use --local for the embedded store"
        ),
        CredentialProblem::Expired => format!(
            "the AWS credentials have expired ({detail}); refresh them (e.g. `aws sso login`) and retry"
        ),
        CredentialProblem::Rejected => format!(
            "access denied: the server does not accept these AWS credentials ({detail}); check the access key and secret key, or sign in again"
        ),
        CredentialProblem::Unavailable => format!(
            "cannot get AWS credentials ({detail}); sign in again (e.g. `aws sso login`) or check the profile, then retry"
        ),
    }
}

/// What an S3 server answered to a request it refused: the facts a support request needs
/// (what mountpoint-s3 keeps as its error metadata).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Answer {
    /// The HTTP status (absent for one key's failure inside a DeleteObjects answer).
    pub status: Option<u16>,
    /// S3's error code (`NoSuchKey`, `SignatureDoesNotMatch`...), when the body had one.
    pub code: Option<String>,
    /// S3's error message, when the body had one.
    pub message: Option<String>,
    /// The request id (`x-amz-request-id`), which the provider's support asks for.
    pub request_id: Option<String>,
    /// The extended request id (`x-amz-id-2`, AWS's host id).
    pub host_id: Option<String>,
}

impl S3Answer {
    /// The answer in words: the status (when `with_status`), code, message and request id.
    pub fn describe(&self, with_status: bool) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(status) = self.status.filter(|_| with_status || self.code.is_none()) {
            parts.push(format!("HTTP {status}"));
        }
        if let Some(code) = &self.code {
            parts.push(code.clone());
        }
        match &self.message {
            Some(m) if !m.is_empty() && Some(m) != self.code.as_ref() => parts.push(m.clone()),
            _ if self.code.is_none() => parts.push(
                self.status
                    .and_then(|s| http::StatusCode::from_u16(s).ok())
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("error")
                    .to_owned(),
            ),
            _ => {}
        }
        let mut text = parts.join(": ");
        if let Some(id) = &self.request_id {
            text.push_str(&format!(" (request id {id})"));
        }
        text
    }

    /// Whether the answer says the credentials themselves are the problem, and which.
    pub(crate) fn credential_problem(&self) -> Option<CredentialProblem> {
        match self.code.as_deref()? {
            // RequestExpired (a signature too old) was always told as expired credentials.
            "ExpiredToken" | "TokenRefreshRequired" | "RequestExpired" => {
                Some(CredentialProblem::Expired)
            }
            "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" => {
                Some(CredentialProblem::Rejected)
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for S3Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe(true))
    }
}

impl Error {
    /// The error for a failed write to standard output: [`Error::OutputClosed`] when its
    /// reader went away, else what the write said.
    pub(crate) fn writing_output(source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::BrokenPipe {
            Self::OutputClosed
        } else {
            Self::Local {
                what: "cannot write",
                path: "the output".into(),
                source,
            }
        }
    }

    /// The credentials error for `answer`, when the answer is about the credentials.
    pub(crate) fn from_credentials_answer(target: &str, answer: S3Answer) -> Option<Error> {
        let problem = answer.credential_problem()?;
        let detail = match problem {
            CredentialProblem::Rejected if !target.is_empty() => {
                format!("{target}: {}", answer.describe(false))
            }
            _ => answer.describe(false),
        };
        Some(Error::Credentials {
            problem,
            detail,
            answer: Some(Box::new(answer)),
        })
    }

    /// What is wrong with the credentials, when that is what failed: faces offer to sign in
    /// again or to pick another connection.
    pub fn credential_problem(&self) -> Option<CredentialProblem> {
        match self {
            Error::Credentials { problem, .. } => Some(*problem),
            Error::Unaborted { cause, .. } => cause.credential_problem(),
            _ => None,
        }
    }

    /// The server's answer, when the error is one.
    pub fn s3_answer(&self) -> Option<&S3Answer> {
        match self {
            Error::Credentials { answer, .. } | Error::RetriesExhausted { answer, .. } => {
                answer.as_deref()
            }
            Error::AccessDenied { answer, .. }
            | Error::Service { answer, .. }
            | Error::NotAnS3Answer { answer, .. }
            | Error::Http { answer, .. } => Some(answer),
            Error::Unaborted { cause, .. } => cause.s3_answer(),
            _ => None,
        }
    }

    /// The request id of the server's answer, when there is one.
    pub fn request_id(&self) -> Option<&str> {
        self.s3_answer()?.request_id.as_deref()
    }
}

/// What a face keeps of an [`Error`] once it has happened (a transfer's event, a failed row):
/// its words and the facts to act on. Cloneable, unlike [`Error`], which holds I/O errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    /// The error's message, for the user.
    pub message: String,
    /// What is wrong with the credentials, when that is what failed.
    pub credentials: Option<CredentialProblem>,
    /// The server's answer, when the server refused the request.
    pub answer: Option<S3Answer>,
    /// The bucket that does not exist, when that is what failed: nothing can go into it.
    pub missing_bucket: Option<String>,
    /// A download found a local file in its place and kept it: replacing it is the way on.
    pub local_file_exists: bool,
}

impl From<&Error> for ErrorReport {
    fn from(e: &Error) -> Self {
        ErrorReport {
            message: e.to_string(),
            credentials: e.credential_problem(),
            answer: e.s3_answer().cloned(),
            missing_bucket: match e {
                Error::NoSuchBucket(b) => Some(b.clone()),
                _ => None,
            },
            local_file_exists: matches!(
                e,
                Error::Local { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists
            ),
        }
    }
}

impl ErrorReport {
    /// A report of a failure that is words only (no [`Error`] behind it).
    pub fn words(message: impl Into<String>) -> Self {
        ErrorReport {
            message: message.into(),
            credentials: None,
            answer: None,
            missing_bucket: None,
            local_file_exists: false,
        }
    }
}

impl std::fmt::Display for ErrorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What to do about a listener that could not be opened, for the failures with a usual cause.
fn listen_hint(reason: &std::io::Error) -> &'static str {
    match reason.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (another program, or another s3share, uses that port: choose another port)"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            " (no network interface of this machine has that address)"
        }
        std::io::ErrorKind::PermissionDenied => {
            " (ports below 1024 need administrator rights: choose a port above 1024)"
        }
        _ => "",
    }
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

/// What to do about an endpoint that could not be reached: a certificate nobody here trusts
/// (a company's or a lab's own CA) needs that CA, not another address.
fn unreachable_advice(message: &str) -> String {
    // A self-signed certificate made the quick way (`openssl req -x509`) is a CA certificate:
    // TLS refuses it as a server's own even when SSL_CERT_FILE names it, and the advice to
    // set SSL_CERT_FILE, already set, led nowhere.
    if message.contains("CaUsedAsEndEntity") {
        return "the server's certificate is a CA certificate used as the server's own, which TLS \
                refuses even when SSL_CERT_FILE names it: give the server a certificate issued \
                by that CA (one with basicConstraints CA:FALSE), and SSL_CERT_FILE the CA's"
            .to_owned();
    }
    if !message.to_ascii_lowercase().contains("certificate") {
        return "check the address and that the server is running".to_owned();
    }
    match std::env::var_os("SSL_CERT_FILE") {
        Some(file) => format!(
            "its TLS certificate is not trusted here: SSL_CERT_FILE ({}) does not hold the CA \
             that issued it",
            std::path::Path::new(&file).display()
        ),
        None => "its TLS certificate is not trusted here: if it comes from your own CA, set \
                 SSL_CERT_FILE to that CA's PEM file"
            .to_owned(),
    }
}

/// How an [`Error::Unaborted`] words its cause (as an upload's own failure always read).
fn unaborted_cause(cause: &Error) -> String {
    match cause {
        Error::S3 { message, .. } => message.clone(),
        Error::RetriesExhausted { attempts, last, .. } => {
            format!("gave up after {attempts} attempts; last error: {last}")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA certificate used as the server's own is named as such: the advice to set
    /// SSL_CERT_FILE (a tester had it set already) cannot help there.
    #[test]
    fn a_ca_certificate_used_as_the_servers_own_is_told_apart() {
        let e = Error::Unreachable {
            endpoint: "https://127.0.0.1:19543".into(),
            message: "client error (Connect): invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))".into(),
        };
        let said = e.to_string();
        assert!(
            said.contains("a CA certificate used as the server's own"),
            "{said}"
        );
        assert!(!said.contains("set SSL_CERT_FILE to"), "{said}");
        let e = Error::Unreachable {
            endpoint: "http://127.0.0.1:9".into(),
            message: "Connection refused".into(),
        };
        assert!(e.to_string().contains("check the address"));
    }
}
