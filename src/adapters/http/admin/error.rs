//! The admin API's error responses: one JSON shape for every failure, naming the field when the
//! input is at fault.

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use crate::app::admin::AdminError;

/// Body of every admin error.
#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Object)]
pub struct ErrorDetail {
    /// Machine-readable kind: invalid_request, unauthorized, not_found, conflict, unavailable.
    #[oai(rename = "type")]
    pub kind: String,
    /// Human-readable explanation.
    pub message: String,
    /// The input field at fault, when one is.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
}

/// Every error status an admin endpoint can answer with.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The input is invalid; `field` names it.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or wrong admin token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No such entity.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// A unique name is already taken.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The database is unavailable; nothing was changed.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

fn body(kind: &str, message: impl Into<String>, field: Option<String>) -> Json<ErrorBody> {
    Json(ErrorBody {
        error: ErrorDetail {
            kind: kind.into(),
            message: message.into(),
            field,
        },
    })
}

impl ApiError {
    /// 400 for `field`.
    pub fn bad_request(field: Option<String>, message: impl Into<String>) -> Self {
        Self::BadRequest(body("invalid_request", message, field))
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::Unauthorized(body(
            "unauthorized",
            "missing or invalid admin token: send Authorization: Bearer <ADMIN_TOKEN>",
            None,
        ))
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(body("not_found", format!("{what} not found"), None))
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Validation(v) => Self::bad_request(Some(v.field.clone()), v.to_string()),
            AdminError::NotFound(what) => Self::not_found(what),
            AdminError::Conflict(m) => Self::Conflict(body("conflict", m, None)),
            AdminError::Unavailable(m) => {
                tracing::error!(error = %m, "admin operation failed on storage");
                Self::Unavailable(body(
                    "unavailable",
                    "the database is unavailable; nothing was changed",
                    None,
                ))
            }
        }
    }
}

/// Turns any error poem or poem-openapi raises outside our handlers (bad path parameter,
/// unknown route, wrong method) into the admin JSON error shape.
pub fn to_json_error(err: poem::Error) -> poem::Response {
    use poem::IntoResponse;
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let kind = match status.as_u16() {
        400 => "invalid_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        429 => "rate_limited",
        _ if status.is_server_error() => "internal_error",
        _ => "invalid_request",
    };
    let message = if status.is_server_error() {
        "internal error".to_string()
    } else {
        err.to_string()
    };
    // A query or path parameter that does not parse: name it, like body fields.
    let field = err
        .downcast_ref::<poem_openapi::error::ParseParamError>()
        .map(|e| e.name.to_string());
    poem_openapi::payload::Json(ErrorBody {
        error: ErrorDetail {
            kind: kind.into(),
            message,
            field,
        },
    })
    .with_status(status)
    .into_response()
}
