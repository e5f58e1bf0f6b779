//! The protocol core against the vectors made by the Python reference
//! (`tests/data/vectors`, copied from `shared/vectors`).

use retalk::proto::{
    args_sha256, auth::signed_text, canonical_json, fingerprint, Auth, AuthError, SignedRequest,
};
use serde_json::{json, Value};

fn vectors(name: &str) -> Value {
    let path = format!("{}/tests/data/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every case is either reproduced byte for byte or (for the documented
/// edge cases only) refused; none may produce a different string.
#[test]
fn canonical_args_match_reference() {
    let v = vectors("canonical_args.json");
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 14);
    for case in cases {
        // Re-parse the JSON text so numbers keep their literal form.
        let args: Value = serde_json::from_str(&case["args"].to_string()).unwrap();
        let got = canonical_json(&args).expect("every vector case has a canonical form");
        assert_eq!(got, case["canonical"].as_str().unwrap(), "case {args}");
        let hash = args_sha256(args.as_object().unwrap()).unwrap();
        assert_eq!(hash, case["sha256"].as_str().unwrap());
    }
}

#[test]
fn fingerprints_match_reference() {
    let v = vectors("signed_requests.json");
    for f in v["fingerprints"].as_array().unwrap() {
        assert_eq!(
            fingerprint(
                f["identity_key"].as_str().unwrap(),
                f["signing_key"].as_str().unwrap()
            ),
            f["user_id"].as_str().unwrap()
        );
    }
}

fn ts_of(case: &Value) -> i64 {
    let a = &case["auth"];
    a.get("ts")
        .or_else(|| a.get("timestamp"))
        .unwrap()
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Verifies a vector case the way a relay does, with the relay's clock set
/// to the vector's timestamp: the auth object against the tool name and the
/// hash of the business args as received.
fn verify_case(case: &Value) -> Result<(), AuthError> {
    let auth = Auth::parse(&case["auth"])?;
    let hash = args_sha256(case["args"].as_object().unwrap()).unwrap();
    let audience = [case["audience"].as_str().unwrap().to_owned()];
    auth.verify(
        case["tool"].as_str().unwrap(),
        &audience,
        &hash,
        ts_of(case),
    )
    .map(|_| ())
}

/// The whole request body as a relay receives it.
fn request_body(case: &Value) -> String {
    let mut args = case["args"].as_object().unwrap().clone();
    args.insert("auth".into(), case["auth"].clone());
    json!({"tool": case["tool"], "args": args}).to_string()
}

#[test]
fn valid_signed_requests_verify() {
    let v = vectors("signed_requests.json");
    let valid = v["valid"].as_array().unwrap();
    assert!(!valid.is_empty());
    for case in valid {
        let args = case["args"].as_object().unwrap();
        assert_eq!(
            args_sha256(args).unwrap(),
            case["args_sha256"].as_str().unwrap()
        );
        let auth = Auth::parse(&case["auth"]).unwrap();
        let text = signed_text(
            case["tool"].as_str().unwrap(),
            case["audience"].as_str().unwrap(),
            auth.user_id.as_str(),
            &auth.ts,
            auth.nonce.as_str(),
            case["args_sha256"].as_str().unwrap(),
        );
        assert_eq!(text, case["signed_text"].as_str().unwrap());
        verify_case(case).unwrap_or_else(|e| panic!("{} refused: {e}", case["tool"]));
        let req = SignedRequest::parse(request_body(case).as_bytes()).unwrap();
        assert_eq!(req.args_sha256, case["args_sha256"].as_str().unwrap());
        assert_eq!(req.call.name(), case["tool"].as_str().unwrap());
    }
}

#[test]
fn invalid_signed_requests_are_refused_for_the_right_reason() {
    let v = vectors("signed_requests.json");
    let invalid = v["invalid"].as_array().unwrap();
    assert_eq!(invalid.len(), 5);
    for case in invalid {
        let why = case["why"].as_str().unwrap();
        let want = if why.contains("fingerprint") || why.contains("user_id is not") {
            AuthError::KeysMismatch
        } else {
            AuthError::BadSignature
        };
        assert_eq!(verify_case(case), Err(want), "case: {why}");
        // As a whole request it is refused too (here, the read_messages case
        // already fails on its send_message arguments).
        let refused = match SignedRequest::parse(request_body(case).as_bytes()) {
            Err(_) => true,
            Ok(req) => req
                .auth
                .verify(
                    req.call.name(),
                    &[case["audience"].as_str().unwrap().to_owned()],
                    &req.args_sha256,
                    ts_of(case),
                )
                .is_err(),
        };
        assert!(refused, "case: {why}");
    }
}

/// A valid request stays valid only inside the 150 s window.
#[test]
fn freshness_window() {
    let v = vectors("signed_requests.json");
    let case = &v["valid"][0];
    let auth = Auth::parse(&case["auth"]).unwrap();
    let aud = [case["audience"].as_str().unwrap().to_owned()];
    let hash = case["args_sha256"].as_str().unwrap();
    let ts = ts_of(case);
    assert!(auth.verify("count_keys", &aud, hash, ts + 150).is_ok());
    assert!(auth.verify("count_keys", &aud, hash, ts - 150).is_ok());
    assert_eq!(
        auth.verify("count_keys", &aud, hash, ts + 151),
        Err(AuthError::Stale)
    );
    assert_eq!(
        auth.verify("count_keys", &aud, hash, ts - 151),
        Err(AuthError::Stale)
    );
}

/// Both dialects of `auth` carry the same request.
#[test]
fn both_auth_dialects_verify() {
    let v = vectors("signed_requests.json");
    let case = &v["valid"][3];
    let a = case["auth"].as_object().unwrap();
    let new_names = json!({
        "fingerprint": a["user_id"], "timestamp": a["ts"], "signature": a["sig"],
        "identity_key": a["identity_key"], "signing_key": a["signing_key"], "nonce": a["nonce"],
    });
    let mut c = case.clone();
    c["auth"] = new_names;
    verify_case(&c).unwrap();
}

/// What we sign, a relay verifies, and the auth object round-trips in every
/// dialect.
#[test]
fn sign_then_verify_round_trip() {
    use retalk::proto::{
        build_request, tools::send_message::MessageType, tools::SendMessage, Dialect,
        KeyPairSigner, UserId,
    };
    let signer = KeyPairSigner::random();
    let to = UserId::parse("dddddddddddddddddddddddddddddddd", "to").unwrap();
    let msg = SendMessage::new(to, MessageType::Normal, b"opaque");
    for dialect in [Dialect::V001, Dialect::V03, Dialect::Both] {
        let body = build_request(
            &msg,
            &signer,
            "http://127.0.0.1:8766",
            dialect,
            1_800_000_000,
        )
        .unwrap();
        let req = SignedRequest::parse(&body).unwrap();
        let aud = [
            "http://other".to_owned(),
            "http://127.0.0.1:8766".to_owned(),
        ];
        assert!(req
            .auth
            .verify("send_message", &aud, &req.args_sha256, 1_800_000_010)
            .is_ok());
        assert_eq!(
            req.auth
                .verify("read_messages", &aud, &req.args_sha256, 1_800_000_010),
            Err(AuthError::BadSignature)
        );
    }
}
