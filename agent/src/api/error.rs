//! What can go wrong when the agent calls the server, in words an operator
//! can act on: which request, which status, and the server's own message.

use stowage_protocol::api::{ApiError, codes};

/// A request to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The server answered with an error body.
    #[error("{what}: the server refused with {status} - {error}")]
    Api {
        /// The request, e.g. "PUT /uploads/…/packs/…".
        what: String,
        /// HTTP status.
        status: u16,
        /// The server's [`ApiError`] body.
        error: ApiError,
    },
    /// The server answered something that is not the API's shape.
    #[error("{what}: the server answered {status} with an unexpected body - {problem}")]
    Protocol {
        /// The request.
        what: String,
        /// HTTP status.
        status: u16,
        /// What was wrong with the body.
        problem: String,
    },
    /// No answer: connection refused, reset, timed out, TLS failure.
    #[error("{what}: unable to reach the server - {source}")]
    Transport {
        /// The request.
        what: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
}

impl CallError {
    /// Whether trying the same request again may succeed: connection
    /// failures, 5xx, 429, 408 and errors the server marks retryable.
    ///
    /// 408 is the server's HTTP layer giving up on a request that arrived
    /// too slowly (a loaded machine): it comes with an empty body and says
    /// nothing about the request itself, which every call here may repeat.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { status, error, .. } => {
                error.retryable || *status >= 500 || *status == 429 || *status == 408
            }
            Self::Protocol { status, .. } => *status >= 500 || *status == 408,
            Self::Transport { .. } => true,
        }
    }

    /// The API error code, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { error, .. } => Some(&error.code),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Protocol { status, .. } => Some(*status),
            Self::Transport { .. } => None,
        }
    }

    /// True for 404 `not_found` (an unknown id or another tenant's).
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(codes::NOT_FOUND) || self.status() == Some(404)
    }

    /// The blobs a refused commit named as missing.
    pub fn missing_blobs(&self) -> &[stowage_protocol::ids::BlobId] {
        match self {
            Self::Api { error, .. } if error.code == codes::MISSING_BLOBS => &error.missing_blobs,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_timeout_with_an_empty_body_is_retried() {
        let error = CallError::Protocol {
            what: "PUT uploads/s/packs/p".to_owned(),
            status: 408,
            problem: "not an API error body: \"\"".to_owned(),
        };

        assert!(error.is_retryable());
    }
}
