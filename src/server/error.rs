//! The server's one error type: an HTTP status, a stable code for clients, and a message a
//! person can act on. Internal details are logged, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::room_task::Refusal;
use crate::room::protocol::ErrorBody;

/// An error answered to a client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable snake_case code (the protocol document lists them).
    pub code: &'static str,
    /// What happened and what to do.
    pub message: String,
    /// Seconds after which asking again may work (sent as `Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, telling the client to ask again after `secs` seconds.
    #[must_use]
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 400.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401: no token, or one that is not valid for this room.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: a valid token that may not do this.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} does not exist"),
        )
    }

    /// 500: logs the detail, tells the client only that it failed.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {detail}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; try again",
        )
    }

    /// 410: the room is gone or shutting down.
    pub fn gone() -> Self {
        Self::new(StatusCode::GONE, "room_ended", "the room has ended")
    }

    /// The JSON body.
    #[must_use]
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code.to_owned(),
            message: self.message.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<crate::room::RoomError> for ApiError {
    fn from(e: crate::room::RoomError) -> Self {
        use crate::room::RoomError;
        let status = match e {
            RoomError::NotAllowed { .. } | RoomError::Removed => StatusCode::FORBIDDEN,
            RoomError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            RoomError::Ended => StatusCode::GONE,
            RoomError::UnknownParticipant(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::CONFLICT,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

/// A room's refusal as HTTP: its status and the protocol's code.
impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let message = refusal.to_string();
        match refusal {
            Refusal::NoToken | Refusal::BadToken | Refusal::BadInvitation => {
                Self::unauthorized(message)
            }
            Refusal::Removed => Self::forbidden("removed", message),
            Refusal::NotOnStage => Self::forbidden("not_on_stage", message),
            Refusal::MayNotInvite => Self::forbidden("not_allowed", message),
            Refusal::Ended => Self::gone(),
            Refusal::Room(e) => e.into(),
            Refusal::NoSuchSession => Self::not_found("that session"),
            Refusal::NoSuchInvitation => Self::not_found("that invitation"),
            Refusal::BadMedia { code, message } => Self::bad_request(code, message),
            Refusal::IceRestart => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "ice_restart_unsupported",
                message,
            ),
            Refusal::SessionCap(cap) => {
                let status = if cap.is_room() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::TOO_MANY_REQUESTS
                };
                Self::new(status, cap.code(), message).retry_after(cap.retry_after_secs())
            }
            Refusal::Internal(detail) => Self::internal(detail),
        }
    }
}
