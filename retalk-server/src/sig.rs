//! The relay's one rule for accepting an Ed25519 signature, applied alike to
//! a request checked alone and to a request checked inside a batch.
//!
//! The rule:
//!
//! 1. the signing key and the signature's `R` must decode to curve points,
//!    and neither may be of small order (a small-order key can "sign"
//!    anything; libsodium, the reference's verifier, refuses both too);
//! 2. `s` must be canonical (below the group order);
//! 3. the **cofactored** equation `[8][s]B = [8]R + [8][k]A` must hold, as
//!    ZIP-215 specifies ([`ed25519_zebra`] implements it for single and batch
//!    checks).
//!
//! Why cofactored: a batch check is only equivalent to checking each
//! signature alone when both use the cofactored equation. The cofactorless
//! single check (`verify_strict`) refuses a signature whose key or `R` has a
//! small-order component, while a randomised batch check passes it whenever
//! the random coefficient happens to cancel that component (about one time
//! in eight): the answer to a request then depended on what else was in its
//! batch. With the cofactored equation in both places, a request's answer is
//! the same alone or in any batch. The only signatures this accepts that
//! `verify_strict` refuses are made by the key's owner with a deliberately
//! mixed-order key or nonce point: no one else can produce them, so it
//! allows no forgery (see docs/compatibility.md).

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_zebra::{batch, Signature, VerificationKey, VerificationKeyBytes};

/// The checks made before the signature equation: both points decode and
/// neither has small order. Cheap (two decompressions, no scalar product).
pub fn points_acceptable(key: &[u8; 32], sig: &[u8; 64]) -> bool {
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    let ok = |bytes: [u8; 32]| {
        CompressedEdwardsY(bytes)
            .decompress()
            .is_some_and(|p| !p.is_small_order())
    };
    ok(*key) && ok(r)
}

/// Checks one signature under the relay's rule.
pub fn verify(key: &[u8; 32], sig: &[u8; 64], msg: &[u8]) -> bool {
    if !points_acceptable(key, sig) {
        return false;
    }
    let Ok(vk) = VerificationKey::try_from(*key) else {
        return false;
    };
    vk.verify(&Signature::from_bytes(sig), msg).is_ok()
}

/// Checks several signatures at once under the relay's rule: true only if
/// every one of them would pass [`verify`] (up to a 2^-128 chance of a
/// false "true" per call, as for any randomised batch check). A false answer
/// says only that at least one fails; check them one by one to find which.
pub fn verify_all<'a>(
    items: impl IntoIterator<Item = (&'a [u8; 32], &'a [u8; 64], &'a [u8])>,
) -> bool {
    let mut verifier = batch::Verifier::new();
    for (key, sig, msg) in items {
        if !points_acceptable(key, sig) {
            return false;
        }
        verifier.queue((
            VerificationKeyBytes::from(*key),
            Signature::from_bytes(sig),
            msg,
        ));
    }
    verifier.verify(rand::thread_rng()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
    use curve25519_dalek::edwards::EdwardsPoint;
    use curve25519_dalek::scalar::Scalar;
    use proptest::prelude::*;
    use sha2::{Digest, Sha512};

    /// A signature made by someone who knows `a` for the key `aB + T_key`,
    /// with nonce point `rB + T_r` (T from the 8-torsion subgroup): how an
    /// owner deliberately produces mixed-order keys and nonces.
    fn crafted(a: Scalar, t_key: usize, r: Scalar, t_r: usize, msg: &[u8]) -> ([u8; 32], [u8; 64]) {
        let big_a: EdwardsPoint = B * a + EIGHT_TORSION[t_key];
        let big_r: EdwardsPoint = B * r + EIGHT_TORSION[t_r];
        let a_bytes = big_a.compress().to_bytes();
        let r_bytes = big_r.compress().to_bytes();
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(r_bytes)
                .chain_update(a_bytes)
                .chain_update(msg),
        );
        let s = r + k * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_bytes);
        sig[32..].copy_from_slice(s.as_bytes());
        (a_bytes, sig)
    }

    fn scalar(seed: u64) -> Scalar {
        Scalar::from_hash(Sha512::new().chain_update(seed.to_le_bytes()))
    }

    #[test]
    fn honest_signatures_pass_and_small_order_keys_and_nonces_do_not() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let sig = ed25519_dalek::Signer::sign(&key, b"hello").to_bytes();
        let pk = key.verifying_key().to_bytes();
        assert!(verify(&pk, &sig, b"hello"));
        assert!(!verify(&pk, &sig, b"hellp"));
        // The identity as key, with s = 0 and R = identity: the classic
        // "signature valid for every message".
        let id = EdwardsPoint::default().compress().to_bytes();
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&id);
        assert!(!verify(&id, &forged, b"anything"));
        assert!(!verify_all([(&id, &forged, &b"anything"[..])]));
        // A small-order R with an honest key.
        let (a, s) = crafted(scalar(1), 0, Scalar::ZERO, 3, b"m");
        assert!(!verify(&a, &s, b"m"));
    }

    proptest! {
        // Each case costs a few dozen scalar products (slow in debug builds).
        #![proptest_config(ProptestConfig::with_cases(40))]

        /// Whatever mixes of honest, mixed-order, small-order and wrong
        /// signatures share a batch, the batch says "all good" exactly when
        /// each one alone passes.
        #[test]
        fn batch_equals_single(
            items in proptest::collection::vec((any::<u64>(), 0usize..8, any::<u64>(), 0usize..8, any::<bool>()), 1..12)
        ) {
            let msgs: Vec<Vec<u8>> = (0..items.len()).map(|i| format!("request {i}").into_bytes()).collect();
            let sigs: Vec<([u8; 32], [u8; 64])> = items
                .iter()
                .zip(&msgs)
                .map(|(&(a, ta, r, tr, corrupt), m)| {
                    let (k, mut s) = crafted(scalar(a), ta, scalar(r), tr, m);
                    if corrupt {
                        s[40] ^= 1;
                    }
                    (k, s)
                })
                .collect();
            let single: Vec<bool> = sigs.iter().zip(&msgs).map(|((k, s), m)| verify(k, s, m)).collect();
            let batch = verify_all(sigs.iter().zip(&msgs).map(|((k, s), m)| (k, s, m.as_slice())));
            prop_assert_eq!(batch, single.iter().all(|&ok| ok));
            // Each one alone, as a batch of one, answers as the single check.
            for (((k, s), m), alone) in sigs.iter().zip(&msgs).zip(&single) {
                prop_assert_eq!(verify_all([(k, s, m.as_slice())]), *alone);
            }
            // The owner's mixed-order signatures pass (cofactored rule) and
            // corrupted ones never do.
            for (&(_, _, _, _, corrupt), ok) in items.iter().zip(&single) {
                if corrupt { prop_assert!(!ok); } else { prop_assert!(*ok); }
            }
        }
    }
}
