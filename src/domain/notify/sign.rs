//! Webhook signatures: Feishu and DingTalk both sign with HMAC-SHA256 and base64, but differ in
//! what is signed and where the signature goes.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// Feishu: `base64(HMAC-SHA256(key = "{timestamp}\n{secret}", message = ""))`, timestamp in
/// seconds; goes into the body as `timestamp` and `sign`.
pub fn feishu(timestamp_s: i64, secret: &str) -> String {
    let key = format!("{timestamp_s}\n{secret}");
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(key.as_bytes(), b""))
}

/// DingTalk: `base64(HMAC-SHA256(key = secret, message = "{timestamp}\n{secret}"))`,
/// timestamp in milliseconds; goes into the URL as `timestamp` and (URL-encoded) `sign`.
pub fn dingtalk(timestamp_ms: i64, secret: &str) -> String {
    let msg = format!("{timestamp_ms}\n{secret}");
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret.as_bytes(), msg.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signatures_differ_by_platform_and_time() {
        assert_ne!(feishu(1, "s"), feishu(2, "s"));
        assert_ne!(feishu(1, "s"), dingtalk(1, "s"));
        assert_eq!(dingtalk(1_700_000_000_000, "s").len(), 44);
    }
}
