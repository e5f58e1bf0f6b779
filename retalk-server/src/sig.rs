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

use std::sync::OnceLock;

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::VerifyingKey;
use ed25519_zebra::{batch, Signature, VerificationKey, VerificationKeyBytes};

/// Every 32-byte string that decodes (as curve25519-dalek decodes, which is
/// what both ed25519-dalek and ed25519-zebra use) to a point of small order:
/// 14 of them.
///
/// Why a list: deciding "small order" from the point costs a decompression
/// (a field exponentiation, about a fifth of a batched signature check) per
/// signature, on top of the one the signature check makes anyway. Matching
/// the encoding against this list answers the same question for a few
/// comparisons; libsodium refuses small-order points the same way.
///
/// Why it is complete: an encoding is 255 bits of `y` (decoded modulo
/// `p = 2^255 - 19`, so `y` and `y + p` decode alike when both fit) and a
/// sign bit for `x`. A point `P` of small order is one of the eight
/// [`EIGHT_TORSION`] points, so any encoding decoding to it carries `y(P)` or
/// `y(P) + p` and either sign bit: at most four candidates per point. The
/// list is those candidates that the library itself decodes to a
/// small-order point, computed once, not typed in.
fn small_order_encodings() -> &'static [[u8; 32]] {
    static LIST: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    LIST.get_or_init(|| {
        let mut list = Vec::new();
        for point in EIGHT_TORSION.iter() {
            let canonical = point.compress().to_bytes();
            let mut ys = vec![canonical];
            // y + p < 2^255 exactly when y < 19; its bytes are then p's
            // (ed ff .. ff 7f) with y added to the first.
            let mut y = canonical;
            y[31] &= 0x7f;
            if y[0] < 19 && y[1..].iter().all(|&b| b == 0) {
                let mut alias = [0xff; 32];
                alias[0] = 0xed + y[0];
                alias[31] = 0x7f;
                ys.push(alias);
            }
            for y in ys {
                for sign in [0u8, 0x80] {
                    let mut bytes = y;
                    bytes[31] = (bytes[31] & 0x7f) | sign;
                    let small = CompressedEdwardsY(bytes)
                        .decompress()
                        .is_some_and(|p| p.is_small_order());
                    if small && !list.contains(&bytes) {
                        list.push(bytes);
                    }
                }
            }
        }
        list
    })
}

/// Whether `bytes` decodes to a point of small order (see
/// [`small_order_encodings`]). False also for bytes that decode to no point
/// at all: the signature check refuses those itself.
pub fn is_small_order_encoding(bytes: &[u8; 32]) -> bool {
    small_order_encodings().iter().any(|e| e == bytes)
}

/// The checks made before the signature equation: neither the key nor the
/// signature's `R` has small order (the key is already decoded, so it is a
/// point; `R` is decoded by the signature check, which refuses one that is
/// no point). No decompression here.
pub fn points_acceptable(key: &VerifyingKey, sig: &[u8; 64]) -> bool {
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    !key.is_weak() && !is_small_order_encoding(&r)
}

/// Checks one signature under the relay's rule: [`verify_all`] on a batch
/// of one.
///
/// Why not a single-signature check: ed25519-dalek's batch of one runs on
/// curve25519-dalek's AVX-512 IFMA backend where the CPU has it (see
/// `.cargo/config.toml`) and costs about 24 µs on this project's machine,
/// against about 34 µs for ed25519-zebra's cofactored single check
/// (`retalk-bench verify --batch 1`, docs/benchmarks.md round 6), which
/// runs on an older curve25519-dalek without that backend. The answer is
/// the same (the tests hold it to ed25519-zebra's single check): the fast
/// step's "yes" is final and its "no" is asked again of ed25519-zebra's
/// cofactored batch, which for one signature is ZIP-215's single rule.
///
/// For a signature expected to pass (a request checked alone). One that
/// fails pays for both steps; [`verify_suspect`] is for those.
pub fn verify(key: &VerifyingKey, sig: &[u8; 64], msg: &[u8]) -> bool {
    verify_all([(key, sig, msg)])
}

/// Checks one signature under the relay's rule with ed25519-zebra's single
/// cofactored check alone: for finding the culprits of a batch that failed,
/// where failures are expected. A bad signature costs one check here (about
/// 34 µs) rather than two in [`verify`], so a flood of badly signed
/// requests costs the relay no more than before [`verify`] had its fast step.
pub fn verify_suspect(key: &VerifyingKey, sig: &[u8; 64], msg: &[u8]) -> bool {
    if !points_acceptable(key, sig) {
        return false;
    }
    let Ok(vk) = VerificationKey::try_from(key.to_bytes()) else {
        return false;
    };
    vk.verify(&Signature::from_bytes(sig), msg).is_ok()
}

/// Checks several signatures at once under the relay's rule: true only if
/// every one of them would pass [`verify`] (up to a 2^-128 chance of a
/// false "true" per call, as for any randomised batch check). A false answer
/// says only that at least one fails; check them one by one to find which.
///
/// Two library checks, cheapest first:
///
/// 1. ed25519-dalek's batch check ([`ed25519_dalek::verify_batch`]), on the
///    keys the request parser already decoded (and remembers per thread),
///    so only each `R` is decompressed. Its equation is **cofactorless**:
///    when it holds, the cofactored one (the relay's rule) holds too, since
///    it is the same sum multiplied by 8. Its random coefficients are drawn
///    from a hash of every input of the batch (dalek's design), so no
///    submitter can pick signatures whose errors cancel. So its "yes" is
///    final.
/// 2. Its "no" is not: a signature the owner made with a mixed-order key or
///    `R` passes the relay's rule yet may fail a cofactorless batch. So a
///    "no" is asked again of ed25519-zebra's cofactored batch check, the
///    same rule as [`verify`]; only its answer stands.
///
/// Honest batches (every request of a well-behaved client) pass step 1 and
/// skip the second decompression of each key that step 2 makes (about a
/// fifth of a signature check). A batch with a bad or mixed-order signature
/// costs one batch more before the caller checks each alone.
pub fn verify_all<'a>(
    items: impl IntoIterator<Item = (&'a VerifyingKey, &'a [u8; 64], &'a [u8])>,
) -> bool {
    let items: Vec<(&VerifyingKey, &[u8; 64], &[u8])> = items.into_iter().collect();
    if items
        .iter()
        .any(|(key, sig, _)| !points_acceptable(key, sig))
    {
        return false;
    }
    fast_batch_accepts(&items) || cofactored_batch_accepts(&items)
}

/// Step 1 of [`verify_all`]: ed25519-dalek's cofactorless batch check on
/// decoded keys. True means every signature passes the relay's rule.
fn fast_batch_accepts(items: &[(&VerifyingKey, &[u8; 64], &[u8])]) -> bool {
    let msgs: Vec<&[u8]> = items.iter().map(|(_, _, m)| *m).collect();
    let sigs: Vec<ed25519_dalek::Signature> = items
        .iter()
        .map(|(_, s, _)| ed25519_dalek::Signature::from_bytes(s))
        .collect();
    let keys: Vec<VerifyingKey> = items.iter().map(|(k, _, _)| **k).collect();
    ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok()
}

/// Step 2 of [`verify_all`]: ed25519-zebra's cofactored (ZIP-215) batch
/// check, the relay's rule itself.
fn cofactored_batch_accepts(items: &[(&VerifyingKey, &[u8; 64], &[u8])]) -> bool {
    let mut verifier = batch::Verifier::new();
    for (key, sig, msg) in items {
        verifier.queue((
            VerificationKeyBytes::from(key.to_bytes()),
            Signature::from_bytes(sig),
            *msg,
        ));
    }
    verifier.verify(rand::thread_rng()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
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
        let k = Scalar::from_bytes_mod_order_wide(
            &Sha512::new()
                .chain_update(r_bytes)
                .chain_update(a_bytes)
                .chain_update(msg)
                .finalize()
                .into(),
        );
        let s = r + k * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_bytes);
        sig[32..].copy_from_slice(s.as_bytes());
        (a_bytes, sig)
    }

    /// [`verify`] on key bytes (every key here decodes to a point), held to
    /// [`rule`] on every call, as is [`verify_suspect`].
    fn check(key: &[u8; 32], sig: &[u8; 64], msg: &[u8]) -> bool {
        let vk = VerifyingKey::from_bytes(key).unwrap();
        let ok = verify(&vk, sig, msg);
        assert_eq!(ok, rule(key, sig, msg), "verify disagrees with the rule");
        assert_eq!(
            ok,
            verify_suspect(&vk, sig, msg),
            "verify_suspect disagrees"
        );
        ok
    }

    /// The relay's rule as the module's docs state it, from libraries alone
    /// and independent of [`verify_all`]: no small-order key or `R`, then
    /// ed25519-zebra's single (ZIP-215, cofactored) check.
    fn rule(key: &[u8; 32], sig: &[u8; 64], msg: &[u8]) -> bool {
        let small = |b: &[u8; 32]| {
            CompressedEdwardsY(*b)
                .decompress()
                .is_some_and(|p| p.is_small_order())
        };
        let r: [u8; 32] = sig[..32].try_into().unwrap();
        if small(key) || small(&r) {
            return false;
        }
        VerificationKey::try_from(*key)
            .is_ok_and(|vk| vk.verify(&Signature::from_bytes(sig), msg).is_ok())
    }

    /// [`verify_all`] on key bytes.
    fn check_all<'a>(
        items: impl IntoIterator<Item = (&'a [u8; 32], &'a [u8; 64], &'a [u8])>,
    ) -> bool {
        let items: Vec<_> = items
            .into_iter()
            .map(|(k, s, m)| (VerifyingKey::from_bytes(k).unwrap(), s, m))
            .collect();
        verify_all(items.iter().map(|(k, s, m)| (k, *s, *m)))
    }

    /// The list of small-order encodings says exactly what decoding and
    /// checking the order says: for every candidate encoding of every
    /// small-order point (both signs, both y aliases), for their neighbours
    /// with one bit flipped, and for random bytes.
    #[test]
    fn small_order_list_matches_decoding() {
        let truth = |b: &[u8; 32]| {
            CompressedEdwardsY(*b)
                .decompress()
                .is_some_and(|p| p.is_small_order())
        };
        let mut probes: Vec<[u8; 32]> = Vec::new();
        for t in EIGHT_TORSION.iter() {
            let c = t.compress().to_bytes();
            for y in [c, {
                let mut a = [0xff; 32];
                a[0] = 0xedu8.wrapping_add(c[0]);
                a[31] = 0x7f;
                a
            }] {
                for sign in [0u8, 0x80] {
                    let mut b = y;
                    b[31] = (b[31] & 0x7f) | sign;
                    probes.push(b);
                    for bit in 0..256 {
                        let mut n = b;
                        n[bit / 8] ^= 1 << (bit % 8);
                        probes.push(n);
                    }
                }
            }
        }
        for i in 0..20_000u64 {
            let mut b = [0u8; 32];
            for (j, chunk) in b.chunks_mut(8).enumerate() {
                chunk.copy_from_slice(
                    &(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ j as u64).to_le_bytes(),
                );
            }
            probes.push(b);
        }
        for b in &probes {
            assert_eq!(is_small_order_encoding(b), truth(b), "{}", hex::encode(b));
        }
        assert_eq!(small_order_encodings().len(), 14);
    }

    fn scalar(seed: u64) -> Scalar {
        Scalar::from_bytes_mod_order_wide(
            &Sha512::new()
                .chain_update(seed.to_le_bytes())
                .finalize()
                .into(),
        )
    }

    #[test]
    fn honest_signatures_pass_and_small_order_keys_and_nonces_do_not() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let sig = ed25519_dalek::Signer::sign(&key, b"hello").to_bytes();
        let pk = key.verifying_key().to_bytes();
        assert!(check(&pk, &sig, b"hello"));
        assert!(!check(&pk, &sig, b"hellp"));
        // The identity as key, with s = 0 and R = identity: the classic
        // "signature valid for every message".
        let id = EdwardsPoint::default().compress().to_bytes();
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&id);
        assert!(!check(&id, &forged, b"anything"));
        assert!(!check_all([(&id, &forged, &b"anything"[..])]));
        // A small-order R with an honest key.
        let (a, s) = crafted(scalar(1), 0, Scalar::ZERO, 3, b"m");
        assert!(!check(&a, &s, b"m"));
    }

    /// Honest batches are settled by the fast (cofactorless, decoded-key)
    /// check; a batch whose only odd member is an owner's mixed-order
    /// signature, which the fast check may refuse, is still accepted, as
    /// the relay's rule accepts that signature alone.
    #[test]
    fn the_fast_batch_settles_honest_batches_and_never_has_the_last_word_on_a_no() {
        let msgs: Vec<Vec<u8>> = (0..16).map(|i| format!("m{i}").into_bytes()).collect();
        let honest: Vec<([u8; 32], [u8; 64])> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| crafted(scalar(i as u64), 0, scalar(100 + i as u64), 0, m))
            .collect();
        let keys: Vec<VerifyingKey> = honest
            .iter()
            .map(|(k, _)| VerifyingKey::from_bytes(k).unwrap())
            .collect();
        let items: Vec<(&VerifyingKey, &[u8; 64], &[u8])> = keys
            .iter()
            .zip(&honest)
            .zip(&msgs)
            .map(|((k, (_, s)), m)| (k, s, m.as_slice()))
            .collect();
        assert!(fast_batch_accepts(&items));
        assert!(verify_all(items.iter().copied()));
        // An R with an order-8 component: the cofactorless sum cancels it
        // only when the batch's coefficient for it is a multiple of 8, so
        // some of these seeds fail the fast check; all pass in the end.
        let mut fast_refused = 0;
        for seed in 0..32u64 {
            let (k, s) = crafted(scalar(1000 + seed), 0, scalar(2000 + seed), 1, b"odd");
            let odd_key = VerifyingKey::from_bytes(&k).unwrap();
            let mut mixed = items.clone();
            mixed.push((&odd_key, &s, b"odd"));
            assert!(check(&k, &s, b"odd"), "the owner's signature holds alone");
            if !fast_batch_accepts(&mixed) {
                fast_refused += 1;
            }
            assert!(verify_all(mixed.iter().copied()), "seed {seed}");
        }
        assert!(fast_refused > 0, "the second opinion was never needed");
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
            let single: Vec<bool> = sigs.iter().zip(&msgs).map(|((k, s), m)| check(k, s, m)).collect();
            let batch = check_all(sigs.iter().zip(&msgs).map(|((k, s), m)| (k, s, m.as_slice())));
            prop_assert_eq!(batch, single.iter().all(|&ok| ok));
            // Each one alone, as a batch of one, answers as the single check.
            for (((k, s), m), alone) in sigs.iter().zip(&msgs).zip(&single) {
                prop_assert_eq!(check_all([(k, s, m.as_slice())]), *alone);
            }
            // The owner's mixed-order signatures pass (cofactored rule) and
            // corrupted ones never do.
            for (&(_, _, _, _, corrupt), ok) in items.iter().zip(&single) {
                if corrupt { prop_assert!(!ok); } else { prop_assert!(*ok); }
            }
        }
    }
}
