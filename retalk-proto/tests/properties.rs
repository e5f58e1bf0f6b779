//! Property tests (proptest) for what both ends must agree on byte for
//! byte: canonical JSON and ids.

use proptest::prelude::*;
use retalk_proto::{canonical_args, canonical_json, fingerprint, Nonce, UserId};
use serde_json::{Map, Number, Value};

/// Any JSON value the wire can carry: nested objects and arrays of
/// strings (any Unicode, astral and control characters included), big and
/// small integers, finite floats, booleans and null.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| Value::Number(i.into())),
        any::<u64>().prop_map(|u| Value::Number(u.into())),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Values equal as JSON data (numbers compared as what they denote).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A nonce is exactly 32 lowercase hex characters, and its bytes are
    /// what `hex::decode` makes of them; anything else is refused.
    #[test]
    fn nonce_parse_is_lowercase_hex_decode(s in "[0-9a-fA-Fg]{30,34}") {
        let lower = s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        match retalk_proto::Nonce::parse(&s) {
            Ok(n) => {
                prop_assert!(lower, "{s} accepted");
                prop_assert_eq!(n.as_str(), s.as_str());
                prop_assert_eq!(n.to_bytes().to_vec(), hex::decode(&s).unwrap());
            }
            Err(_) => prop_assert!(!lower, "{s} refused"),
        }
    }

    /// Every 32 lowercase hex characters are a nonce, with those bytes, and
    /// one character changed to an uppercase or non-hex one is not.
    #[test]
    fn valid_nonces_decode_and_one_bad_character_refuses(s in "[0-9a-f]{32}", at in 0usize..32, bad in "[A-Fg-z]") {
        let n = retalk_proto::Nonce::parse(&s).unwrap();
        prop_assert_eq!(n.to_bytes().to_vec(), hex::decode(&s).unwrap());
        let mut broken = s.clone();
        broken.replace_range(at..at + 1, &bad);
        prop_assert!(retalk_proto::Nonce::parse(&broken).is_err(), "{broken}");
    }

    /// `lower_hex` writes what `hex::encode` writes, for any bytes.
    #[test]
    fn lower_hex_is_hex_encode(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        prop_assert_eq!(retalk_proto::lower_hex(&bytes), hex::encode(&bytes));
    }

    /// The canonical form is printable ASCII, parses back to the same data,
    /// and is its own canonical form.
    #[test]
    fn canonical_json_round_trips(v in json()) {
        let c = canonical_json(&v).unwrap();
        prop_assert!(c.bytes().all(|b| (0x20..0x7f).contains(&b)), "{c}");
        let back: Value = serde_json::from_str(&c).unwrap();
        prop_assert!(same(&v, &back), "{v} -> {c} -> {back}");
        prop_assert_eq!(canonical_json(&back).unwrap(), c);
    }

    /// The order in which a peer wrote its keys on the wire never changes
    /// the canonical form, so the hash a signature covers does not depend on
    /// it: the same object written forwards and backwards.
    #[test]
    fn canonical_args_ignore_key_order(pairs in prop::collection::btree_map(any::<String>(), json(), 0..12)) {
        let text = |it: &mut dyn Iterator<Item = (&String, &Value)>| {
            let fields: Vec<String> = it
                .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), v))
                .collect();
            format!("{{{}}}", fields.join(","))
        };
        let forward: Map<String, Value> = serde_json::from_str(&text(&mut pairs.iter())).unwrap();
        let backward: Map<String, Value> = serde_json::from_str(&text(&mut pairs.iter().rev())).unwrap();
        prop_assert_eq!(canonical_args(&forward).unwrap(), canonical_args(&backward).unwrap());
    }

    /// A user id is exactly 32 lowercase hex digits; it survives parsing,
    /// printing and serde unchanged.
    #[test]
    fn user_ids_round_trip(s in "[0-9a-f]{32}") {
        let id = UserId::parse(&s, "id").unwrap();
        prop_assert_eq!(id.as_str(), s.as_str());
        let json = serde_json::to_string(&id).unwrap();
        prop_assert_eq!(serde_json::from_str::<UserId>(&json).unwrap(), id);
    }

    /// Nothing else parses as a user id, by either path.
    #[test]
    fn anything_else_is_not_a_user_id(s in any::<String>()) {
        let valid = s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        prop_assert_eq!(UserId::parse(&s, "id").is_ok(), valid);
        prop_assert_eq!(serde_json::from_value::<UserId>(Value::String(s)).is_ok(), valid);
    }

    /// Every fingerprint of any two key strings is a valid user id; of two
    /// base64 strings (what keys are), it depends on which key is which.
    /// (Not of any two strings: the reference hashes `identity|signing`, so
    /// `("|", "")` and `("", "|")` hash alike; base64 has no `|`.)
    #[test]
    fn fingerprints_are_user_ids(
        any_a in any::<String>(),
        any_b in any::<String>(),
        a in "[A-Za-z0-9+/=]{0,64}",
        b in "[A-Za-z0-9+/=]{0,64}",
    ) {
        let fp = fingerprint(&any_a, &any_b);
        prop_assert!(UserId::parse(&fp, "id").is_ok(), "{fp}");
        if a != b {
            prop_assert_ne!(fingerprint(&a, &b), fingerprint(&b, &a));
        }
    }

    /// Nonces: 32 lowercase hex digits, whose 16 bytes round trip.
    #[test]
    fn nonces_round_trip(bytes in any::<[u8; 16]>()) {
        let text = bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let n = Nonce::parse(&text).unwrap();
        prop_assert_eq!(n.to_bytes(), bytes);
        prop_assert_eq!(n.as_str(), text.as_str());
    }
}
