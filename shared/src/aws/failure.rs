//! What an SDK error means here: busy (503, worth retrying) or a fault (500), with the
//! SDK's own detail kept for the log, and counted against the service that failed.

use crate::domain::error::PortError;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Throttling, contention, time-outs, transport failures and the service's own 5xx are
/// "unavailable" (503, worth retrying); everything else is logged with its detail and
/// answered 500.
pub(crate) fn sdk_error<E>(err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    const THROTTLED: &[&str] = &[
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "LimitExceededException",
        "InternalServerError",
        "ServiceUnavailable",
        "KMSInternalException",
        "DependencyTimeoutException",
        "TransactionConflictException",
    ];
    let server_error = err.raw_response().is_some_and(|r| r.status().is_server_error());
    let unavailable =
        matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_))
            || server_error
            || err.code().is_some_and(|code| THROTTLED.contains(&code));
    if let Some(service) = service_of::<E>() {
        crate::domain::metrics::count(crate::domain::metrics::Counter::DependencyFailures(service));
    }
    let detail = aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string();
    if unavailable {
        PortError::Unavailable(detail)
    } else {
        PortError::Other(detail)
    }
}

/// The service behind an operation's error type, by the SDK crate that defines it
/// (`aws_sdk_dynamodb::operation::get_item::GetItemError`, ...).
fn service_of<E>() -> Option<crate::domain::metrics::Service> {
    use crate::domain::metrics::Service;
    let name = std::any::type_name::<E>();
    [("aws_sdk_dynamodb::", Service::DynamoDb), ("aws_sdk_kms::", Service::Kms), ("aws_sdk_sesv2::", Service::Ses)]
        .into_iter()
        .find_map(|(prefix, service)| name.starts_with(prefix).then_some(service))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metrics::Service;

    #[test]
    fn a_failure_is_counted_against_the_service_whose_operation_failed() {
        assert_eq!(service_of::<aws_sdk_dynamodb::operation::get_item::GetItemError>(), Some(Service::DynamoDb));
        #[cfg(feature = "kms")]
        assert_eq!(service_of::<aws_sdk_kms::operation::decrypt::DecryptError>(), Some(Service::Kms));
        #[cfg(feature = "ses")]
        assert_eq!(service_of::<aws_sdk_sesv2::operation::send_email::SendEmailError>(), Some(Service::Ses));
        assert_eq!(service_of::<std::io::Error>(), None);
    }
}
