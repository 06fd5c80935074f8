//! Join tokens: `K10<sha256 of the hub CA certificate's DER, hex>::<id>.<secret>`.
//!
//! The CA hash lets a device that has never talked to the hub pin the hub's CA on its first
//! connection (like k3s's tokens and kubeadm's `--discovery-token-ca-cert-hash`); `id` names
//! the token in etcd and `secret` is checked against the hash stored there. Tokens are
//! one-time and expire.

use sha2::{Digest, Sha256};

/// A parsed join token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// SHA-256 of the CA certificate (DER), lowercase hex, 64 characters.
    pub ca_hash: String,
    /// Token id: 6 lowercase alphanumerics.
    pub id: String,
    /// Token secret: 16 or more lowercase alphanumerics.
    pub secret: String,
}

/// Why a token string is not a token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("join token is malformed: {0} (expected K10<ca sha256>::<id>.<secret>)")]
pub struct TokenError(pub &'static str);

impl JoinToken {
    /// Parse `K10<hash>::<id>.<secret>`.
    pub fn parse(s: &str) -> Result<JoinToken, TokenError> {
        let s = s.trim();
        let rest = s
            .strip_prefix("K10")
            .ok_or(TokenError("missing K10 prefix"))?;
        let (hash, cred) = rest.split_once("::").ok_or(TokenError("missing ::"))?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TokenError("CA hash is not 64 hex digits"));
        }
        let (id, secret) = cred
            .split_once('.')
            .ok_or(TokenError("missing . in id.secret"))?;
        let ok = |v: &str| {
            v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        };
        if id.len() != 6 || !ok(id) {
            return Err(TokenError("id is not 6 lowercase alphanumerics"));
        }
        if secret.len() < 16 || !ok(secret) {
            return Err(TokenError("secret is not 16+ lowercase alphanumerics"));
        }
        Ok(JoinToken {
            ca_hash: hash.to_ascii_lowercase(),
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }

    /// The token's text form.
    pub fn render(&self) -> String {
        format!("K10{}::{}.{}", self.ca_hash, self.id, self.secret)
    }

    /// What the hub stores instead of the secret: SHA-256 of it, hex.
    pub fn secret_hash(&self) -> String {
        sha256_hex(self.secret.as_bytes())
    }
}

/// SHA-256 of `data`, lowercase hex (the CA pin is `sha256_hex(ca_der)`).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let t = JoinToken {
            ca_hash: "ab".repeat(32),
            id: "abc123".into(),
            secret: "0123456789abcdef".into(),
        };
        assert_eq!(JoinToken::parse(&t.render()), Ok(t.clone()));
        assert!(JoinToken::parse("K10abc::abc123.0123456789abcdef").is_err());
        assert!(JoinToken::parse(&t.render().replace("K10", "K11")).is_err());
        assert!(JoinToken::parse(&t.render().replace(".0123", ".XX23")).is_err());
        assert_ne!(t.secret_hash(), t.secret);
    }
}
