//! `olm_exchange.json`: pickles and Olm messages made by Python vodozemac
//! (through the reference) open and decrypt with our vodozemac.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use retalk::proto::{fingerprint, Envelope};
use serde_json::Value;
use vodozemac::olm::{Account, AccountPickle, OlmMessage, Session, SessionConfig, SessionPickle};

#[test]
fn python_pickles_and_messages_decrypt() {
    let path = format!(
        "{}/tests/data/vectors/olm_exchange.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let key: [u8; 32] = hex::decode(v["pickle_key_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();

    // Both accounts unpickle to the identities the vector states.
    for who in ["alice", "bob"] {
        let p = AccountPickle::from_encrypted(v[who]["account_pickle"].as_str().unwrap(), &key)
            .unwrap();
        let acct = Account::from_pickle(p);
        let ik = acct.curve25519_key().to_base64();
        let sk = acct.ed25519_key().to_base64();
        assert_eq!(ik, v[who]["identity_key"].as_str().unwrap());
        assert_eq!(sk, v[who]["signing_key"].as_str().unwrap());
        assert_eq!(fingerprint(&ik, &sk), v[who]["user_id"].as_str().unwrap());
    }

    // A wrong pickle key is refused, not mis-decoded.
    assert!(AccountPickle::from_encrypted(
        v["bob"]["account_pickle"].as_str().unwrap(),
        &[7u8; 32]
    )
    .is_err());

    // Alice's session pickle opens with its id.
    let sp = SessionPickle::from_encrypted(v["alice"]["session_pickle"].as_str().unwrap(), &key)
        .unwrap();
    assert_eq!(
        Session::from_pickle(sp).session_id(),
        v["alice"]["session_id"].as_str().unwrap()
    );

    // Bob decrypts Alice's two messages in order, from an inbound session
    // created by the first (pre-key) one.
    let p =
        AccountPickle::from_encrypted(v["bob"]["account_pickle"].as_str().unwrap(), &key).unwrap();
    let mut bob = Account::from_pickle(p);
    let alice_ik =
        vodozemac::Curve25519PublicKey::from_base64(v["alice"]["identity_key"].as_str().unwrap())
            .unwrap();
    let msgs = v["messages"].as_array().unwrap();
    let mut session: Option<Session> = None;
    for m in msgs {
        let bytes = STANDARD.decode(m["body"].as_str().unwrap()).unwrap();
        let msg = OlmMessage::from_parts(m["mtype"].as_u64().unwrap() as usize, &bytes).unwrap();
        let plaintext = match (&mut session, &msg) {
            (None, OlmMessage::PreKey(pk)) => {
                let r = bob
                    .create_inbound_session(SessionConfig::version_1(), alice_ik, pk)
                    .unwrap();
                session = Some(r.session);
                r.plaintext
            }
            (Some(s), _) => s.decrypt(&msg).unwrap(),
            (None, _) => panic!("first message must be a pre-key message"),
        };
        assert_eq!(
            String::from_utf8(plaintext.clone()).unwrap(),
            m["plaintext"].as_str().unwrap()
        );
        let want: Value = serde_json::from_str(m["plaintext"].as_str().unwrap()).unwrap();
        match Envelope::parse(&plaintext).unwrap() {
            Envelope::Msg { id, text, name } => {
                assert_eq!(id, want["id"].as_str().unwrap());
                assert_eq!(text, want["text"].as_str().unwrap());
                assert_eq!(name, want["name"].as_str().unwrap());
            }
            other => panic!("expected a chat message, got {other:?}"),
        }
    }
}
