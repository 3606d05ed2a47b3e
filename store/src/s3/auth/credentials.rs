//! Access keys and secrets. Secrets never print.

use std::collections::HashMap;
use std::fmt;

/// A secret access key that redacts itself in Debug output and logs.
#[derive(Clone, PartialEq, Eq)]
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret: SecretKey,
}

/// The access keys this server accepts.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: HashMap<String, SecretKey>,
}

impl Keyring {
    pub fn new(creds: impl IntoIterator<Item = Credentials>) -> Self {
        Keyring {
            keys: creds
                .into_iter()
                .map(|c| (c.access_key_id, c.secret))
                .collect(),
        }
    }

    pub fn secret(&self, access_key_id: &str) -> Option<&SecretKey> {
        self.keys.get(access_key_id)
    }
}
