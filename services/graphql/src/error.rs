use async_graphql::ErrorExtensions;
use tenfold_app::{AppError, ErrorCode};
use tracing::error;

/// Maps an application error to a GraphQL error with `extensions.code`.
/// Internal errors are logged with their whole cause chain and shown to the
/// client only as an opaque message with the request id.
pub fn to_graphql_error(err: AppError, request_id: Option<&str>) -> async_graphql::Error {
    let message = if err.code == ErrorCode::Internal {
        error!(request_id = request_id.unwrap_or("-"), error = %err, "internal error");
        match request_id {
            Some(id) => format!("internal error; quote request id {id} to support"),
            None => "internal error".to_owned(),
        }
    } else {
        err.public_message().to_owned()
    };
    async_graphql::Error::new(message).extend_with(|_, ext| {
        ext.set("code", err.code.as_str());
        if let Some(field) = err.field {
            ext.set("field", field);
        }
        if let Some(secs) = err.retry_after_secs {
            ext.set("retryAfter", secs);
        }
        if let Some(reason) = err.reason {
            ext.set("reason", reason.as_str());
        }
        if let Some(id) = request_id {
            ext.set("requestId", id);
        }
    })
}
