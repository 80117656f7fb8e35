//! Turning SDK errors into [`Error`]s a user can act on.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::error::Error;

/// Maps an SDK error of `operation` on `target` (a bucket or `s3://` URL) to an [`Error`].
/// Timeouts become [`Error::Unresponsive`], naming `endpoint`.
pub(crate) fn sdk_error<E>(
    operation: &str,
    target: &str,
    endpoint: &str,
    err: SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let full = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("");
            let message = e.message().unwrap_or(code).to_owned();
            match code {
                "AccessDenied" | "Forbidden" | "SignatureDoesNotMatch" | "InvalidAccessKeyId" => {
                    Error::AccessDenied {
                        target: target.to_owned(),
                        message: format!("{code}: {message}"),
                    }
                }
                "ExpiredToken" | "TokenRefreshRequired" | "RequestExpired" => {
                    Error::ExpiredCredentials(message)
                }
                "NoSuchBucket" => {
                    Error::NoSuchBucket(target.split('/').nth(2).unwrap_or(target).to_owned())
                }
                _ => {
                    let code = if code.is_empty() {
                        format!("HTTP {}", service.raw().status().as_u16())
                    } else {
                        code.to_owned()
                    };
                    let request_id = e
                        .meta()
                        .extra("aws_request_id")
                        .map(|id| format!(" (request id {id})"))
                        .unwrap_or_default();
                    Error::S3 {
                        operation: format!("{operation} on {target}"),
                        message: format!("{code}: {message}{request_id}"),
                    }
                }
            }
        }
        _ if full.contains("no providers in chain provided credentials")
            || full.contains("failed to load credentials")
            || full.contains("CredentialsNotLoaded") =>
        {
            Error::NoCredentials(full)
        }
        _ if full.contains("expired") && full.to_ascii_lowercase().contains("token") => {
            Error::ExpiredCredentials(full)
        }
        SdkError::TimeoutError(_) => Error::Unresponsive {
            endpoint: endpoint.to_owned(),
            detail: format!("{operation}: {}", crate::error::error_chain(&err)),
        },
        // A connection that could not be opened in time is "cannot reach"; one that was open
        // and then brought nothing is a server that stopped answering.
        SdkError::DispatchFailure(d) if d.is_timeout() && !full.contains("connect timeout") => {
            Error::Unresponsive {
                endpoint: endpoint.to_owned(),
                detail: format!("{operation}: {}", crate::error::error_chain(&err)),
            }
        }
        SdkError::DispatchFailure(_) => Error::Unreachable {
            endpoint: endpoint.to_owned(),
            message: crate::error::error_chain(&err),
        },
        _ => Error::S3 {
            operation: format!("{operation} on {target}"),
            message: full,
        },
    }
}
