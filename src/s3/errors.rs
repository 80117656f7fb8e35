//! Turning SDK errors into [`Error`]s a user can act on.

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::{RequestId as _, RequestIdExt as _};
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::error::{CredentialProblem, Error, S3Answer};

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
    if let SdkError::ServiceError(service) = &err {
        let e = service.err();
        let answer = S3Answer {
            status: Some(service.raw().status().as_u16()),
            code: e.code().map(str::to_owned),
            message: e.message().map(str::to_owned),
            request_id: err.request_id().map(str::to_owned),
            host_id: err.extended_request_id().map(str::to_owned),
        };
        return from_answer(operation, target, answer);
    }
    // Credentials the SDK could not get fail before any request is sent: the provider's
    // error is in the chain.
    if let Some(problem) = credentials_problem_in(&err) {
        return Error::Credentials {
            problem,
            detail: crate::error::error_chain(&err),
            answer: None,
        };
    }
    match &err {
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

/// The error for a refusal S3 answered to `operation` on `target`, by its code.
pub(crate) fn from_answer(operation: &str, target: &str, answer: S3Answer) -> Error {
    if let Some(e) = Error::from_credentials_answer(target, answer.clone()) {
        return e;
    }
    if answer.code.is_none() && answer.status.is_some_and(|s| (200..300).contains(&s)) {
        return Error::NotAnS3Answer {
            operation: format!("{operation} on {target}"),
            answer: Box::new(answer),
        };
    }
    match answer.code.as_deref().unwrap_or("") {
        // A HEAD answer has no body: a bare 403 is all it says.
        "" if answer.status == Some(403) => Error::AccessDenied {
            target: target.to_owned(),
            answer: Box::new(answer),
        },
        "AccessDenied" | "Forbidden" => Error::AccessDenied {
            target: target.to_owned(),
            answer: Box::new(answer),
        },
        "NoSuchBucket" => {
            Error::NoSuchBucket(target.split('/').nth(2).unwrap_or(target).to_owned())
        }
        _ => Error::Service {
            operation: format!("{operation} on {target}"),
            answer: Box::new(answer),
        },
    }
}

/// What the credential provider's error in `err`'s source chain says, by its type:
/// none loaded is "missing", any other provider failure (an SSO session to renew, a
/// credential process that failed, a timeout) is "unavailable".
pub(crate) fn credentials_problem_in(
    err: &(dyn std::error::Error + 'static),
) -> Option<CredentialProblem> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(c) = e.downcast_ref::<CredentialsError>() {
            return Some(credentials_problem(c));
        }
        next = e.source();
    }
    None
}

/// The problem a credential provider's error stands for.
pub(crate) fn credentials_problem(e: &CredentialsError) -> CredentialProblem {
    match e {
        CredentialsError::CredentialsNotLoaded(_) => CredentialProblem::Missing,
        _ => CredentialProblem::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use aws_credential_types::provider::{ProvideCredentials, future};

    use super::*;

    #[test]
    fn a_success_without_s3s_answer_asks_for_path_style() {
        let answer = |status| S3Answer {
            status: Some(status),
            ..Default::default()
        };
        let e = from_answer("ListObjectsV2", "s3://b/", answer(200));
        assert!(matches!(e, Error::NotAnS3Answer { .. }), "{e:?}");
        assert!(e.to_string().contains("--path-style"), "{e}");
        // A failure without a code stays what it was.
        let e = from_answer("ListObjectsV2", "s3://b/", answer(502));
        assert!(matches!(e, Error::Service { .. }), "{e:?}");
    }

    /// A credential provider that fails the way `make` says.
    #[derive(Debug)]
    struct Failing(fn() -> CredentialsError);

    impl ProvideCredentials for Failing {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::ready(Err((self.0)()))
        }
    }

    /// What a ListBuckets signed by `provider`'s credentials fails with (no request leaves:
    /// the credentials are resolved first).
    async fn failure_with(provider: Failing) -> Error {
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .credentials_provider(provider)
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        let err = client.list_buckets().send().await.unwrap_err();
        sdk_error("ListBuckets", "the account", "127.0.0.1:9", err)
    }

    #[tokio::test]
    async fn credential_failures_are_told_by_the_providers_error_type() {
        let none = failure_with(Failing(|| CredentialsError::not_loaded("nothing here"))).await;
        assert_eq!(
            none.credential_problem(),
            Some(CredentialProblem::Missing),
            "{none:?}"
        );
        // An SSO session that ended says so in words no text match would know.
        let ended = failure_with(Failing(|| {
            CredentialsError::provider_error("the session of the portal ended")
        }))
        .await;
        assert_eq!(
            ended.credential_problem(),
            Some(CredentialProblem::Unavailable),
            "{ended:?}"
        );
        assert!(
            ended
                .to_string()
                .contains("the session of the portal ended"),
            "{ended}"
        );
    }

    #[test]
    fn answers_about_credentials_are_told_by_their_code() {
        let answer = |code: &str| S3Answer {
            status: Some(403),
            code: Some(code.to_owned()),
            message: Some("words".to_owned()),
            request_id: Some("R1".to_owned()),
            host_id: None,
        };
        let e = from_answer("GetObject", "s3://b/k", answer("ExpiredToken"));
        assert_eq!(e.credential_problem(), Some(CredentialProblem::Expired));
        assert_eq!(e.request_id(), Some("R1"));
        let e = from_answer("GetObject", "s3://b/k", answer("InvalidAccessKeyId"));
        assert_eq!(e.credential_problem(), Some(CredentialProblem::Rejected));
        let e = from_answer("GetObject", "s3://b/k", answer("AccessDenied"));
        assert!(matches!(e, Error::AccessDenied { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "access denied to s3://b/k: AccessDenied: words (request id R1); check the bucket policy or the credentials' permissions"
        );
    }
}
