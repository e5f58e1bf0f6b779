//! Keys of an identity store, derived from its passphrase.
//!
//! One Argon2id run turns the passphrase and the store's random salt into 64
//! bytes: the first half is a ChaCha20-Poly1305 key for values this crate
//! seals itself (the passphrase check value, decrypted messages waiting to be
//! returned), the second half is the key vodozemac encrypts its own pickles
//! with (account, sessions). Two independent halves mean a flaw in one
//! construction does not expose the other's plaintext.
//!
//! The parameters and salt live in the store's `meta` table, so a later
//! version can raise the cost for new stores while still opening old ones.
//! The derived keys are held for the life of the open store (one KDF per
//! process) and wiped from memory when it is dropped.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use zeroize::Zeroizing;

use super::StoreError;

/// Argon2id cost parameters, stored with each identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes over memory.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    /// OWASP's minimum recommendation for Argon2id: 19 MiB, 2 passes, 1
    /// lane. About 20-30 ms in an optimised build, paid once per process.
    fn default() -> Self {
        KdfParams {
            m_kib: 19 * 1024,
            t: 2,
            p: 1,
        }
    }
}

/// Random bytes of a new store's salt.
pub const SALT_LEN: usize = 16;

/// The purpose label sealed into the passphrase check value.
const CHECK_PURPOSE: &str = "passphrase-check";
const CHECK_TEXT: &[u8] = b"retalk identity store";

/// The keys derived from a passphrase.
pub struct StoreKeys {
    seal: Zeroizing<[u8; 32]>,
    pickle: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKeys(..)")
    }
}

impl StoreKeys {
    /// Runs Argon2id. CPU- and memory-heavy by design: call it off the async
    /// runtime's worker threads.
    pub fn derive(passphrase: &str, salt: &[u8], params: KdfParams) -> Result<Self, StoreError> {
        let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(64))
            .map_err(|e| StoreError::Corrupt(format!("unusable key-derivation parameters: {e}")))?;
        let kdf = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
        let mut out = Zeroizing::new([0u8; 64]);
        kdf.hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
            .map_err(|e| StoreError::Corrupt(format!("key derivation failed: {e}")))?;
        let mut seal = Zeroizing::new([0u8; 32]);
        let mut pickle = Zeroizing::new([0u8; 32]);
        seal.copy_from_slice(&out[..32]);
        pickle.copy_from_slice(&out[32..]);
        Ok(StoreKeys { seal, pickle })
    }

    /// The key vodozemac encrypts pickles with.
    pub fn pickle_key(&self) -> &[u8; 32] {
        &self.pickle
    }

    /// Encrypts `plaintext` for this store: base64 of nonce || ciphertext.
    /// `purpose` is bound as associated data so a sealed value cannot be
    /// moved into a column meant for something else.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> String {
        let cipher = ChaCha20Poly1305::new(self.seal.as_ref().into());
        let nonce: [u8; 12] = rand::random();
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: purpose.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        STANDARD.encode(out)
    }

    /// Opens a value made by [`seal`](Self::seal) with the same purpose.
    /// `None` when the key is wrong or the value was altered.
    pub fn open(&self, purpose: &str, sealed: &str) -> Option<Zeroizing<Vec<u8>>> {
        let raw = STANDARD.decode(sealed).ok()?;
        if raw.len() < 12 + 16 {
            return None;
        }
        let cipher = ChaCha20Poly1305::new(self.seal.as_ref().into());
        cipher
            .decrypt(
                Nonce::from_slice(&raw[..12]),
                Payload {
                    msg: &raw[12..],
                    aad: purpose.as_bytes(),
                },
            )
            .ok()
            .map(Zeroizing::new)
    }

    /// A new check value: proves, on open, that a passphrase is the right one
    /// before anything is decrypted or written.
    pub fn check_value(&self) -> String {
        self.seal(CHECK_PURPOSE, CHECK_TEXT)
    }

    /// Whether `check` was sealed with these keys.
    pub fn verify_check(&self, check: &str) -> bool {
        self.open(CHECK_PURPOSE, check)
            .is_some_and(|p| p.as_slice() == CHECK_TEXT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> KdfParams {
        KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        }
    }

    #[test]
    fn check_value_tells_passphrases_apart() {
        let salt = [1u8; SALT_LEN];
        let right = StoreKeys::derive("correct horse", &salt, cheap()).unwrap();
        let wrong = StoreKeys::derive("battery staple", &salt, cheap()).unwrap();
        let check = right.check_value();
        assert!(right.verify_check(&check));
        assert!(!wrong.verify_check(&check));
        assert_ne!(right.pickle_key(), wrong.pickle_key());
    }

    #[test]
    fn sealed_values_are_bound_to_their_purpose() {
        let keys = StoreKeys::derive("pw", &[2u8; SALT_LEN], cheap()).unwrap();
        let sealed = keys.seal("message", b"hello");
        assert_eq!(keys.open("message", &sealed).unwrap().as_slice(), b"hello");
        assert!(keys.open("other", &sealed).is_none());
        assert!(keys.open("message", "not base64!").is_none());
        assert!(!sealed.contains("hello"));
    }
}
