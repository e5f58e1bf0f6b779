//! Item 6 of the interop issue, beyond `tests/e2e/protocol/olm.rs` (which opens
//! every pickle in `olm_exchange.json` and decrypts both Olm messages): the
//! state in those Python-made pickles is live. Alice's unpickled session
//! keeps talking to the inbound session Bob's unpickled account creates,
//! in both directions, and the pickles survive a round trip through our
//! encrypted pickle format.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use vodozemac::olm::{Account, AccountPickle, OlmMessage, Session, SessionConfig, SessionPickle};

fn vectors() -> Value {
    let path = format!(
        "{}/tests/data/vectors/olm_exchange.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn python_made_sessions_continue_both_ways() {
    let v = vectors();
    let key: [u8; 32] = hex::decode(v["pickle_key_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let mut bob = Account::from_pickle(
        AccountPickle::from_encrypted(v["bob"]["account_pickle"].as_str().unwrap(), &key).unwrap(),
    );
    let mut alice_session = Session::from_pickle(
        SessionPickle::from_encrypted(v["alice"]["session_pickle"].as_str().unwrap(), &key)
            .unwrap(),
    );
    let alice_ik =
        vodozemac::Curve25519PublicKey::from_base64(v["alice"]["identity_key"].as_str().unwrap())
            .unwrap();

    // Bob's inbound session from Alice's first (pre-key) message; then the
    // second one.
    let msgs = v["messages"].as_array().unwrap();
    let parse = |m: &Value| {
        OlmMessage::from_parts(
            m["mtype"].as_u64().unwrap() as usize,
            &STANDARD.decode(m["body"].as_str().unwrap()).unwrap(),
        )
        .unwrap()
    };
    let OlmMessage::PreKey(first) = parse(&msgs[0]) else {
        panic!("the first vector message must be a pre-key message")
    };
    let mut bob_session = bob
        .create_inbound_session(SessionConfig::version_1(), alice_ik, &first)
        .unwrap()
        .session;
    bob_session.decrypt(&parse(&msgs[1])).unwrap();
    assert_eq!(bob_session.session_id(), alice_session.session_id());

    // Alice (her Python-pickled session) writes on; Bob reads.
    let m = alice_session
        .encrypt(b"third, from the unpickled session")
        .unwrap();
    assert_eq!(
        bob_session.decrypt(&m).unwrap(),
        b"third, from the unpickled session"
    );
    // Bob answers; Alice's session decrypts it and the ratchet turns.
    let reply = bob_session.encrypt(b"reply from bob").unwrap();
    assert!(matches!(reply, OlmMessage::Normal(_)));
    assert_eq!(alice_session.decrypt(&reply).unwrap(), b"reply from bob");
    let m = alice_session.encrypt(b"after the ratchet step").unwrap();
    assert!(matches!(m, OlmMessage::Normal(_)));
    assert_eq!(bob_session.decrypt(&m).unwrap(), b"after the ratchet step");

    // Re-pickled with our code under the same key, the state is unchanged.
    let again = Session::from_pickle(
        SessionPickle::from_encrypted(&alice_session.pickle().encrypt(&key), &key).unwrap(),
    );
    assert_eq!(again.session_id(), alice_session.session_id());
    // A message already decrypted does not decrypt twice (what duplicate
    // detection by body hash relies on).
    assert!(bob_session.decrypt(&m).is_err());
}

crate::cases! {
    python: [],
    plain: [python_made_sessions_continue_both_ways],
}
