//! Identifiers and public keys as they travel on the wire.
//!
//! Keys stay in their base64 text form because the user id is a hash of that
//! exact text: re-encoding a key (even to an equal value) would change the id.
//! The newtypes only guarantee the text is well formed.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Why an identifier or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not 32 lowercase hex characters.
    #[error("{field} must be a user id: 32 lowercase hex characters")]
    BadUserId {
        /// The argument or field that carried it.
        field: &'static str,
    },
    /// Not unpadded standard base64 of a 32-byte key.
    #[error("{field} must be a 32-byte key in unpadded standard base64")]
    BadKey {
        /// The argument or field that carried it.
        field: &'static str,
    },
    /// Not 32 lowercase hex characters.
    #[error("nonce must be 32 lowercase hex characters")]
    BadNonce,
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A user id: the first 32 hex characters of
/// `sha256(identity_key + "|" + signing_key)`. It is both the address and the
/// pin of a user's keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    /// Checks that `s` is 32 lowercase hex characters.
    pub fn parse(s: &str, field: &'static str) -> Result<Self, IdError> {
        if is_lower_hex(s, 32) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::BadUserId { field })
        }
    }

    /// The id of the user who owns these two public keys.
    pub fn fingerprint(identity_key: &IdentityKey, signing_key: &SigningKey) -> Self {
        Self(fingerprint(identity_key.as_str(), signing_key.as_str()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The fingerprint of two base64 key strings, whatever their validity.
pub fn fingerprint(identity_key_b64: &str, signing_key_b64: &str) -> String {
    let mut h = Sha256::new();
    h.update(identity_key_b64.as_bytes());
    h.update(b"|");
    h.update(signing_key_b64.as_bytes());
    // The first 32 hex characters are the first 16 bytes.
    hex::encode(&h.finalize()[..16])
}

impl TryFrom<String> for UserId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        if is_lower_hex(&s, 32) {
            Ok(Self(s))
        } else {
            Err(IdError::BadUserId { field: "user id" })
        }
    }
}

impl From<UserId> for String {
    fn from(id: UserId) -> String {
        id.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Ids compare, hash and order exactly as their text, so sets and maps keyed
/// by `UserId` can be looked up with a `&str`.
impl std::borrow::Borrow<str> for UserId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for UserId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for UserId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for UserId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

/// Decodes unpadded (or, leniently, padded) standard base64 of exactly 32
/// bytes, keeping the original text.
fn key_bytes(s: &str) -> Option<[u8; 32]> {
    // Decoded into a buffer on the stack: no allocation per key. Anything
    // longer than the buffer is not 32 bytes either.
    let mut buf = [0u8; 48];
    let len = STANDARD_NO_PAD
        .decode_slice(s, &mut buf)
        .or_else(|_| STANDARD.decode_slice(s, &mut buf))
        .ok()?;
    buf.get(..len)?.try_into().ok()
}

macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks that `s` is base64 of a 32-byte key.
            pub fn parse(s: &str, field: &'static str) -> Result<Self, IdError> {
                Self::check(s, field).map(|()| Self(s.to_owned()))
            }

            /// The key's base64 text, exactly as published.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The raw 32 key bytes.
            pub fn to_bytes(&self) -> [u8; 32] {
                key_bytes(&self.0).expect("validated at construction")
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::check(&s, stringify!($name)).map(|()| Self(s))
            }
        }

        impl From<$name> for String {
            fn from(k: $name) -> String {
                k.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

key_type!(
    /// A Curve25519 public key (identity, one-time or fallback key).
    IdentityKey
);

/// An Ed25519 public key that verifies a user's request signatures.
///
/// Keeps the decoded point next to the text: decoding (point
/// decompression) costs about as much as a tenth of a signature check, and
/// a relay needs the point for every request it verifies.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SigningKey {
    text: String,
    // Boxed: the decoded point is ~200 bytes, and keys travel inside enums.
    key: Box<ed25519_dalek::VerifyingKey>,
}

impl SigningKey {
    /// Checks that `s` is base64 of a valid Ed25519 public key.
    pub fn parse(s: &str, field: &'static str) -> Result<Self, IdError> {
        Self::decode(s, field).map(|key| Self {
            text: s.to_owned(),
            key: Box::new(key),
        })
    }

    fn decode(s: &str, field: &'static str) -> Result<ed25519_dalek::VerifyingKey, IdError> {
        let bytes = key_bytes(s).ok_or(IdError::BadKey { field })?;
        decoded_key(&bytes).ok_or(IdError::BadKey { field })
    }

    /// The key's base64 text, exactly as published.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The raw 32 key bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The key as an Ed25519 verifying key.
    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        *self.key
    }

    /// The decoded key, borrowed (no copy of the ~200-byte point).
    pub fn as_verifying_key(&self) -> &ed25519_dalek::VerifyingKey {
        &self.key
    }
}

/// Most decoded keys each thread remembers (see [`decoded_key`]).
const DECODED_KEYS: usize = 4096;

/// The Ed25519 point of 32 key bytes, or `None` when they are no point.
///
/// Decoding (a point decompression) costs about a fifth of a batched
/// signature check, and a relay sees the same few keys in request after
/// request, so each thread keeps the keys it decoded lately (keyed by the
/// bytes; decoding is a pure function of them, so a remembered key is the
/// same value a fresh decoding gives). Only valid keys are kept; the memory
/// is dropped whole when it reaches [`DECODED_KEYS`] (about 900 KiB).
fn decoded_key(bytes: &[u8; 32]) -> Option<ed25519_dalek::VerifyingKey> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static KEYS: RefCell<HashMap<[u8; 32], ed25519_dalek::VerifyingKey>> =
            RefCell::new(HashMap::new());
    }
    if let Some(key) = KEYS.with(|k| k.borrow().get(bytes).copied()) {
        return Some(key);
    }
    let key = ed25519_dalek::VerifyingKey::from_bytes(bytes).ok()?;
    KEYS.with(|k| {
        let mut k = k.borrow_mut();
        if k.len() >= DECODED_KEYS {
            k.clear();
        }
        k.insert(*bytes, key);
    });
    Some(key)
}

// Equality and hashing follow the text, which is what the user id covers.
impl PartialEq for SigningKey {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for SigningKey {}

impl std::hash::Hash for SigningKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl TryFrom<String> for SigningKey {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        let key = Box::new(Self::decode(&s, "SigningKey")?);
        Ok(Self { text: s, key })
    }
}

impl From<SigningKey> for String {
    fn from(k: SigningKey) -> String {
        k.text
    }
}

impl fmt::Display for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl IdentityKey {
    fn check(s: &str, field: &'static str) -> Result<(), IdError> {
        key_bytes(s).map(|_| ()).ok_or(IdError::BadKey { field })
    }
}

/// A request nonce: 16 random bytes as 32 lowercase hex characters.
///
/// Both forms are kept: the text goes on the wire and into the reference's
/// table, the bytes are what the relay's writer looks up and stores for
/// every request, decoded once here (on the verifier threads) rather than
/// on the writer's one thread.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Nonce {
    text: String,
    bytes: [u8; 16],
}

impl Nonce {
    /// A fresh random nonce.
    pub fn random() -> Self {
        let bytes: [u8; 16] = rand::random();
        Self {
            text: hex::encode(bytes),
            bytes,
        }
    }

    /// Checks that `s` is 32 lowercase hex characters.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        if s.len() != 32 {
            return Err(IdError::BadNonce);
        }
        let mut bytes = [0u8; 16];
        for (byte, pair) in bytes.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => *byte = hi << 4 | lo,
                _ => return Err(IdError::BadNonce),
            }
        }
        Ok(Self {
            text: s.to_owned(),
            bytes,
        })
    }

    /// The nonce as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The 16 random bytes.
    pub fn to_bytes(&self) -> [u8; 16] {
        self.bytes
    }
}

impl TryFrom<String> for Nonce {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}

impl From<Nonce> for String {
    fn from(n: Nonce) -> String {
        n.text
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nonce_bytes_are_its_hex() {
        let n = Nonce::parse("000102030405060708090a0b0c0d0eff").unwrap();
        assert_eq!(n.to_bytes()[..3], [0, 1, 2]);
        assert_eq!(n.to_bytes()[15], 0xff);
        assert_eq!(hex::encode(Nonce::random().to_bytes()).len(), 32);
    }

    use super::*;

    #[test]
    fn user_id_shape() {
        assert!(UserId::parse("0123456789abcdef0123456789abcdef", "to").is_ok());
        assert!(UserId::parse("0123456789ABCDEF0123456789abcdef", "to").is_err());
        assert!(UserId::parse("0123", "to").is_err());
    }

    #[test]
    fn a_remembered_key_is_the_decoded_key() {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let text = STANDARD_NO_PAD.encode(sk.verifying_key().as_bytes());
        // First decoding, then from memory: the same point, both times.
        for _ in 0..2 {
            let k = SigningKey::parse(&text, "k").unwrap();
            assert_eq!(k.verifying_key(), sk.verifying_key());
            assert_eq!(k.to_bytes(), *sk.verifying_key().as_bytes());
        }
        // Bytes that are no point are refused every time (never remembered).
        let mut bad = [0u8; 32];
        bad[0] = 2;
        assert!(ed25519_dalek::VerifyingKey::from_bytes(&bad).is_err());
        for _ in 0..2 {
            assert!(SigningKey::parse(&STANDARD_NO_PAD.encode(bad), "k").is_err());
        }
        // Past the bound the memory starts over and still answers right.
        for i in 0..(DECODED_KEYS as u32 + 10) {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            let pk = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
            assert_eq!(decoded_key(pk.as_bytes()), Some(pk));
        }
        let k = SigningKey::parse(&text, "k").unwrap();
        assert_eq!(k.verifying_key(), sk.verifying_key());
    }

    #[test]
    fn key_shape() {
        assert!(IdentityKey::parse("teXmhMp1bJIls+R3WqcrqjOq1aWHuTEJpCgvttG5c1I", "k").is_ok());
        assert!(IdentityKey::parse("not base64!", "k").is_err());
        assert!(IdentityKey::parse("QUJD", "k").is_err());
    }
}
