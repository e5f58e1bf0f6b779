//! The environment variables the CLI reads, behind a trait so the resolution
//! rules can be tested without touching the process environment.

#[cfg(test)]
use std::collections::HashMap;

/// Identity directory, like `-s DIR`.
pub const STORE: &str = "STORE";
/// Base of user-level identities (`$XDG_DATA_HOME/retalk/NAME`).
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";
/// Fallback base of user-level identities (`$HOME/.local/share/retalk/NAME`).
pub const HOME: &str = "HOME";
/// Relay URL (the reference's name).
pub const SERVER_URL: &str = "SERVER_URL";
/// Relay URL (this project's name).
pub const RETALK_RELAY: &str = "RETALK_RELAY";
/// Passphrase (the reference's name).
pub const PICKLE_SECRET: &str = "PICKLE_SECRET";
/// Passphrase (this project's name).
pub const RETALK_PASSPHRASE: &str = "RETALK_PASSPHRASE";
/// A file holding the passphrase on its first line (0.3.x).
pub const RETALK_PASSPHRASE_FILE: &str = "RETALK_PASSPHRASE_FILE";
/// Home of named identities, `~/.retalk` by default (0.3.x).
pub const RETALK_HOME: &str = "RETALK_HOME";
/// The named identity to use, like `-u NAME` (0.3.x).
pub const RETALK_USER: &str = "RETALK_USER";
/// Relay API key, sent as `Authorization: Bearer` (0.3.x).
pub const RETALK_API_KEY: &str = "RETALK_API_KEY";
/// Truthy (1, true, yes, on...): keep sent and received messages for
/// `retalk history` (0.3.x).
pub const RETALK_SAVE_MESSAGE: &str = "RETALK_SAVE_MESSAGE";

/// Read access to environment variables. Empty values count as unset, as in
/// the reference CLI (`FOO= retalk ...` turns FOO off).
pub trait Env {
    /// The raw value, if set (may be empty).
    fn raw(&self, key: &str) -> Option<String>;

    /// The value if set and non-empty.
    fn get(&self, key: &str) -> Option<String> {
        self.raw(key).filter(|v| !v.is_empty())
    }
}

/// The real process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn raw(&self, key: &str) -> Option<String> {
        // A value that is not valid UTF-8 is treated as unset rather than
        // guessed at; paths in these variables are expected to be UTF-8.
        std::env::var(key).ok()
    }
}

/// A fixed environment, for tests.
#[cfg(test)]
#[derive(Debug, Default, Clone)]
pub struct MapEnv(pub HashMap<String, String>);

#[cfg(test)]
impl MapEnv {
    /// An environment holding exactly these pairs.
    pub fn of(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

#[cfg(test)]
impl Env for MapEnv {
    fn raw(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_unset() {
        let env = MapEnv::of(&[("A", ""), ("B", "x")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.raw("A").as_deref(), Some(""));
        assert_eq!(env.get("B").as_deref(), Some("x"));
        assert_eq!(env.get("C"), None);
    }
}
