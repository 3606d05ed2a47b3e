//! A secret access key: a type that redacts itself, so no log line or `Debug` output can carry
//! one. Shared by the protocol (signing, the keyring) and the engine (the keys it keeps).

use std::fmt;

/// A secret access key that redacts itself in Debug output and logs. It serialises as itself
/// (for the index row that keeps it, and nothing else).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretKey(String);

impl SecretKey {
    pub fn new(secret: impl Into<String>) -> Self {
        SecretKey(secret.into())
    }

    /// The secret itself, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_output_redacts() {
        let secret = super::SecretKey::new("wJalrXUtnFEMI");
        assert!(!format!("{secret:?}").contains("wJal"));
    }
}
