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
    /// OWASP's minimum recommendation for Argon2id, 19 MiB and 2 passes,
    /// split into 2 lanes that are filled in parallel: the same memory and
    /// work for an attacker, half the wall time on a machine with two cores
    /// (about 11 ms; 1 lane, the default of the first stores, takes 20).
    /// Paid once per process.
    fn default() -> Self {
        KdfParams {
            m_kib: 19 * 1024,
            t: 2,
            p: 2,
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
        let pw = passphrase.as_bytes();
        match KdfMemory::new(params.m_kib) {
            Some(mut memory) => {
                kdf.hash_password_into_with_memory(pw, salt, out.as_mut(), memory.blocks())
            }
            None => kdf.hash_password_into(pw, salt, out.as_mut()),
        }
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

/// Argon2id's working memory, in huge pages where the system offers them.
///
/// Argon2id touches every one of its 19 MiB; in ordinary 4 KiB pages that
/// is about 5,000 page faults, which cost as much as the hashing itself in
/// a short-lived process like `retalk send` (docs/benchmarks.md). Asking
/// for transparent huge pages (2 MiB) makes it about ten (`retalk id`
/// as a whole: 5,158 faults before, 328 after). The memory is a
/// fresh anonymous mapping, so the kernel hands it over zeroed and takes it
/// back (and wipes it before anyone else gets it) when dropped.
struct KdfMemory {
    map: memmap2::MmapMut,
    blocks: usize,
}

impl KdfMemory {
    /// Huge pages are 2 MiB on x86-64 and arm64 alike; a mapping that is a
    /// whole number of them is placed on a huge-page boundary.
    const HUGE_PAGE: usize = 2 << 20;

    /// `None` when the mapping cannot be made; the caller then lets argon2
    /// allocate on the heap.
    fn new(m_kib: u32) -> Option<Self> {
        let blocks = usize::try_from(m_kib).ok()?;
        let bytes = blocks.checked_mul(argon2::Block::SIZE)?;
        let len = bytes.checked_next_multiple_of(Self::HUGE_PAGE)?;
        let map = memmap2::MmapOptions::new().len(len).map_anon().ok()?;
        #[cfg(target_os = "linux")]
        {
            // Only a hint: without transparent huge pages it is refused and
            // the memory works as ordinary pages.
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        Some(KdfMemory { map, blocks })
    }

    #[allow(unsafe_code)]
    fn blocks(&mut self) -> &mut [argon2::Block] {
        // SAFETY: the mapping is page-aligned (more than a Block's 64-byte
        // alignment), at least `blocks * Block::SIZE` bytes long, zeroed by
        // the kernel, and a Block is plain `u64`s, valid for any bytes. The
        // slice borrows `self` mutably, so nothing else can reach the bytes
        // while it lives.
        let (head, blocks, _) = unsafe { self.map.align_to_mut::<argon2::Block>() };
        debug_assert!(head.is_empty());
        let n = self.blocks.min(blocks.len());
        &mut blocks[..n]
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
    fn the_mapping_holds_every_block_argon2_needs() {
        // Otherwise `derive` silently falls back to the heap and the test
        // below compares the crate with itself.
        let params = KdfParams::default();
        let mut memory = KdfMemory::new(params.m_kib).expect("an anonymous mapping");
        assert_eq!(memory.blocks().len(), params.m_kib as usize);
        let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(64)).unwrap();
        assert!(memory.blocks().len() >= p.block_count());
    }

    #[test]
    fn huge_page_memory_gives_the_same_key_as_argon2s_own() {
        // RFC 9106-style check of our memory path against the crate's heap
        // path, at the default cost and with more than one lane.
        for params in [KdfParams::default(), KdfParams { p: 2, ..cheap() }] {
            let salt = [3u8; SALT_LEN];
            let ours = StoreKeys::derive("pw", &salt, params).unwrap();
            let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(64)).unwrap();
            let kdf = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
            let mut out = [0u8; 64];
            kdf.hash_password_into(b"pw", &salt, &mut out).unwrap();
            assert_eq!(ours.pickle_key(), &out[32..], "{params:?}");
        }
    }

    #[test]
    fn keys_match_argon2_0_5_for_one_and_two_lanes() {
        // Outputs of argon2 0.5.3 (the version the first stores were made
        // with, one lane) at 19 MiB and 2 passes: an upgrade of the crate, its
        // parallel lanes or how its memory is provided must not change the
        // key of an existing store.
        let cases = [
            (
                1,
                "21f60020db8842dd42b55c1493e9a038d9a09e3d692c9e10c38d854d17d42c61",
            ),
            (
                2,
                "39cd29b4d0ec796a86adefd92652b081fdff5e98c69d519075edda534d053851",
            ),
        ];
        for (p, want) in cases {
            let params = KdfParams {
                p,
                ..KdfParams::default()
            };
            let keys = StoreKeys::derive("correct horse", &[3u8; SALT_LEN], params).unwrap();
            assert_eq!(hex::encode(keys.pickle_key()), want, "{p} lanes");
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
