//! Admin authentication: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time, or
//! the console's session cookie (admin token, or a key whose user has role `admin`; writes must
//! come from the console's own origin).

use std::sync::Arc;

use poem::Request;
use poem::http::StatusCode;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::{ApiKey, Bearer};

use crate::adapters::http::ui::UiState;
use crate::adapters::http::ui::csrf::same_origin_write;
use crate::adapters::http::ui::layout::viewer_of;
use crate::app::context::AppContext;
use sha2::{Digest, Sha256};

/// SHA-256 of the admin token, attached to admin routes as request data.
#[derive(Clone)]
pub struct AdminTokenDigest(pub [u8; 32]);

impl AdminTokenDigest {
    /// Digest of `token`.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Constant-time check of a presented token (digests have equal length, so the loop does
    /// not depend on where they differ).
    pub fn matches(&self, presented: &str) -> bool {
        let other: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let diff = self
            .0
            .iter()
            .zip(other.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0
    }
}

/// Proof that the caller may use the admin API: the admin token as a bearer token, or an admin
/// console session.
#[derive(SecurityScheme)]
pub enum AdminAuth {
    /// `Authorization: Bearer <ADMIN_TOKEN>`.
    Bearer(AdminBearer),
    /// The console's `cch_session` cookie.
    Session(AdminSession),
}

/// The admin token as a bearer token.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_admin")]
pub struct AdminBearer(());

async fn check_admin(req: &Request, bearer: Bearer) -> Option<()> {
    let digest = req.data::<AdminTokenDigest>()?;
    digest.matches(&bearer.token).then_some(())
}

/// An admin console session (cookie set by `POST /api/v1/auth/login`).
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "cch_session",
    key_in = "cookie",
    checker = "check_session"
)]
pub struct AdminSession(());

async fn check_session(req: &Request, _cookie: ApiKey) -> poem::Result<()> {
    let unauthorized = || poem::Error::from_string("unauthorized", StatusCode::UNAUTHORIZED);
    let (Some(ctx), Some(ui)) = (req.data::<Arc<AppContext>>(), req.data::<Arc<UiState>>()) else {
        return Err(unauthorized());
    };
    let viewer = viewer_of(ctx, ui, req).ok_or_else(unauthorized)?;
    if !viewer.is_admin() {
        return Err(poem::Error::from_string(
            "this session may use only its own usage pages",
            StatusCode::FORBIDDEN,
        ));
    }
    if !same_origin_write(req.method(), req.headers()) {
        return Err(poem::Error::from_string(
            "cross-site request refused",
            StatusCode::FORBIDDEN,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_token() {
        let d = AdminTokenDigest::of("secret-token");
        assert!(d.matches("secret-token"));
        assert!(!d.matches("secret-tokem"));
        assert!(!d.matches(""));
    }
}
