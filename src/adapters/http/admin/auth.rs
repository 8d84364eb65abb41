//! Admin authentication: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time.

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
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

/// Proof that the caller presented the admin token.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_admin")]
pub struct AdminAuth(());

async fn check_admin(req: &Request, bearer: Bearer) -> Option<()> {
    let digest = req.data::<AdminTokenDigest>()?;
    digest.matches(&bearer.token).then_some(())
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
