//! The properties the fuzz targets check, one function per target. The
//! fuzz targets (`fuzz_targets/`) call them on generated inputs; the test
//! suite (`tests/e2e/protocol/fuzz_corpus.rs`) calls them on every committed
//! seed and regression input, so a crash once found stays fixed.
//!
//! Each function panics when its property fails; returning is a pass.

use retalk::{KdfParams, StoreKeys};
use retalk_proto::{args_sha256, canonical_json, Envelope, SignedRequest};
use serde_json::Value;
use std::sync::OnceLock;

/// The relay's request parser: any body either parses into a tool call
/// with its auth, or is refused with an error; never a panic. What parses
/// then goes through the checks a relay runs before the signature, and the
/// signature check itself (which must refuse, as nothing here is signed by
/// the key it names, except by a fuzzer that found a forgery).
pub fn request(body: &[u8]) {
    let Ok(req) = SignedRequest::parse(body) else {
        return;
    };
    let ts: i64 = req.auth.ts.parse().unwrap_or(0);
    let _ = req.auth.check_claims(ts);
    let _ = req.auth.verify(
        req.call.name(),
        &["http://127.0.0.1:8766".to_owned()],
        &req.args_sha256,
        ts,
    );
}

/// Canonical JSON: for any JSON text, the canonical form (if the value has
/// one) parses back to a value with the same canonical form, and the args
/// hash of an object never panics.
pub fn canonical(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(canonical) = canonical_json(&value) else {
        return;
    };
    let again: Value = serde_json::from_str(&canonical).expect("canonical JSON is JSON");
    assert_eq!(
        canonical_json(&again).expect("a canonical value stays canonical"),
        canonical,
        "canonical form is not a fixed point"
    );
    if let Value::Object(map) = &value {
        let _ = args_sha256(map);
    }
}

/// The plaintext envelope inside Olm messages, written by any peer: parsing
/// never panics, and what parses survives a round trip through its wire
/// form unchanged.
pub fn envelope(plaintext: &[u8]) {
    let Ok(envelope) = Envelope::parse(plaintext) else {
        return;
    };
    let bytes = envelope.to_bytes();
    let again = Envelope::parse(&bytes).expect("our own wire form parses");
    assert_eq!(again, envelope, "envelope changed in a round trip");
}

fn keys() -> &'static StoreKeys {
    static KEYS: OnceLock<StoreKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let cheap = KdfParams {
            m_kib: 256,
            t: 1,
            p: 1,
        };
        StoreKeys::derive("fuzz passphrase", &[7u8; 16], cheap).expect("cheap parameters derive")
    })
}

/// The client store's sealed rows, as read back from disk (where anything
/// may have been written): opening arbitrary text never panics and never
/// succeeds for text not sealed with the key, and what is sealed opens to
/// the same bytes under its purpose only.
pub fn store_row(data: &[u8]) {
    let keys = keys();
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(
            keys.open("row", text).is_none(),
            "forged a sealed row: {text:?}"
        );
    }
    let sealed = keys.seal("row", data);
    let opened = keys.open("row", &sealed).expect("a sealed row opens");
    assert_eq!(&opened[..], data);
    assert!(keys.open("other", &sealed).is_none(), "purpose not bound");
}
