//! The fast path of [`SignedRequest::parse`](super::SignedRequest::parse):
//! a `send_message` read straight into borrowed fields.
//!
//! Nearly every request a busy relay receives is a `send_message` whose
//! strings need no unescaping, with the `auth` fields of one or both
//! dialects as text. The general parser builds a `serde_json::Value` tree
//! for it (a map and an owned string per field), then copies the fields out
//! of it and walks it again for the canonical hash. This path deserializes
//! the same bytes into structs of borrowed strings and hashes the three
//! business arguments directly.
//!
//! It never decides on its own. It answers `None` for anything outside its
//! shape (another tool, an unknown or duplicated field, a `null`, a number
//! where text is expected, an array where an object is expected, an `mtype`
//! other than the literals `0` and `1`, dialect fields that disagree) and
//! for anything it would refuse; the general parser then runs and words the
//! error. When it answers `Some`, the request is the one the general parser
//! builds, field for field: the field checks are the same functions
//! ([`Auth::from_fields`], [`SendMessage::body_is_valid`], `UserId::parse`),
//! and a differential property test holds the two parsers to it.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use super::SignedRequest;
use crate::auth::Auth;
use crate::canonical::{fields_sha256, Field};
use crate::ids::UserId;
use crate::tools::{send_message::MessageType, Call, SendMessage, Tool};

/// The request, if it is a `send_message` of the common shape that the
/// general parser accepts; `None` otherwise.
pub(super) fn parse_send(body: &[u8]) -> Option<SignedRequest> {
    let Object(envelope) = serde_json::from_slice::<Object<Envelope<'_>>>(body).ok()?;
    if envelope.tool.0 != SendMessage::NAME {
        return None;
    }
    let Object(args) = envelope.args;
    let mtype_literal = args.mtype.as_str();
    let mtype = match mtype_literal {
        "0" => MessageType::PreKey,
        "1" => MessageType::Normal,
        _ => return None,
    };
    let to = args.to.0;
    let body = args.body.0;
    if !SendMessage::body_is_valid(&body) {
        return None;
    }
    let Object(auth) = args.auth;
    let user_id = one_of(auth.fingerprint, auth.user_id)?;
    let ts = one_of(auth.timestamp, auth.ts)?;
    let sig = one_of(auth.signature, auth.sig)?;
    let auth = Auth::from_fields(
        &user_id,
        &auth.identity_key.0,
        &auth.signing_key.0,
        ts.into_owned(),
        &auth.nonce.0,
        &sig,
    )
    .ok()?;
    let args_sha256 = fields_sha256(&[
        ("body", Field::Str(&body)),
        ("mtype", Field::Int(mtype_literal)),
        ("to", Field::Str(&to)),
    ]);
    let to = UserId::parse(&to, "to").ok()?;
    Some(SignedRequest {
        call: Call::SendMessage(SendMessage {
            to,
            mtype,
            body: body.into_owned(),
        }),
        auth,
        args_sha256,
    })
}

/// The field under the 0.3.x name or the 0.0.1 one; `None` when neither is
/// there or both are and differ (the general parser refuses both).
fn one_of<'a>(new: Option<Text<'a>>, old: Option<Text<'a>>) -> Option<Cow<'a, str>> {
    match (new, old) {
        (Some(a), Some(b)) => (a.0 == b.0).then_some(a.0),
        (a, b) => a.or(b).map(|t| t.0),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    tool: Text<'a>,
    #[serde(borrow)]
    args: Object<SendArgs<'a>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SendArgs<'a> {
    #[serde(borrow)]
    to: Text<'a>,
    /// Any JSON number, as its literal (`arbitrary_precision`): only `0`
    /// and `1` pass, as in the general parser, and hash as they are.
    mtype: serde_json::Number,
    #[serde(borrow)]
    body: Text<'a>,
    #[serde(borrow)]
    auth: Object<AuthFields<'a>>,
}

/// Every field the general parser reads, under both dialects' names. A
/// field that is present must be text (`deserialize_with`: a `null` is not
/// taken for an absent field, as `Option` would). An unknown field sends
/// the request to the general parser, which ignores it: stricter than
/// needed, and it keeps this path's shape closed.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFields<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    fingerprint: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    user_id: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    timestamp: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    ts: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    signature: Option<Text<'a>>,
    #[serde(borrow, default, deserialize_with = "present")]
    sig: Option<Text<'a>>,
    #[serde(borrow)]
    identity_key: Text<'a>,
    #[serde(borrow)]
    signing_key: Text<'a>,
    #[serde(borrow)]
    nonce: Text<'a>,
}

fn present<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Text<'a>>, D::Error> {
    Text::deserialize(d).map(Some)
}

/// A JSON string, borrowed from the body unless it had escapes. Nothing
/// else (a number, `null`) deserializes into it.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// `T` read from a JSON object only. serde's derived structs also accept
/// an array of their fields in order, which the general parser refuses.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(V(PhantomData)).map(Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Dialect, KeyPairSigner};
    use crate::request::build_request;
    use proptest::prelude::*;

    /// A real signed request body, as our client writes it in `dialect`.
    fn signed(dialect: Dialect, body: &str) -> Vec<u8> {
        let signer = KeyPairSigner::random();
        let to = UserId::parse(&"ab".repeat(16), "to").unwrap();
        let msg = SendMessage {
            to,
            mtype: MessageType::Normal,
            body: body.into(),
        };
        build_request(&msg, &signer, "http://relay.test", dialect, 1_700_000_000).unwrap()
    }

    /// The fast path's verdict must be the general parser's: either it
    /// steps aside, or it builds exactly what the general parser builds.
    fn agrees(body: &[u8]) -> Result<bool, TestCaseError> {
        let general = SignedRequest::parse_general(body);
        match parse_send(body) {
            None => Ok(false),
            Some(fast) => {
                prop_assert_eq!(
                    Ok(&fast),
                    general.as_ref(),
                    "{}",
                    String::from_utf8_lossy(body)
                );
                Ok(true)
            }
        }
    }

    #[test]
    fn the_fast_path_takes_what_clients_send_and_builds_the_same_request() {
        for dialect in [Dialect::V001, Dialect::V03, Dialect::Both] {
            let body = signed(dialect, "aGVsbG8gd29ybGQ=");
            assert!(agrees(&body).unwrap(), "{dialect:?} not taken");
        }
        // As the Python reference writes it (json.dumps: spaces after ","
        // and ":"), and with escapes the fast path must decode as serde
        // does ("\/" in base64, "\u0061" in an id).
        let ours: serde_json::Value =
            serde_json::from_slice(&signed(Dialect::V03, "aGk/+w==")).unwrap();
        let spaced = serde_json::to_string_pretty(&ours).unwrap();
        assert!(agrees(spaced.as_bytes()).unwrap());
        let escaped = String::from_utf8(serde_json::to_vec(&ours).unwrap())
            .unwrap()
            .replace("aGk/+w==", "aGk\\/+w==")
            .replacen("\"abab", "\"\\u0061bab", 1);
        assert!(escaped.contains("\\/") && escaped.contains("\\u0061"));
        assert!(agrees(escaped.as_bytes()).unwrap());
    }

    #[test]
    fn the_fast_path_steps_aside_for_every_other_shape() {
        let ours: serde_json::Value =
            serde_json::from_slice(&signed(Dialect::Both, "aGVsbG8=")).unwrap();
        let text = serde_json::to_string(&ours).unwrap();
        let auth = &ours["args"]["auth"];
        let (user_id, ts, timestamp) = (
            format!("\"user_id\":{}", auth["user_id"]),
            format!("\"ts\":{}", auth["ts"]),
            format!("\"timestamp\":{}", auth["timestamp"]),
        );
        let numeric_ts = format!("\"ts\":{}", auth["ts"].as_str().unwrap());
        // (what, a piece of the valid request, what it becomes)
        let swaps: [(&str, &str, &str); 15] = [
            ("mtype as a float", "\"mtype\":1", "\"mtype\":1.0"),
            ("mtype as -0", "\"mtype\":1", "\"mtype\":-0"),
            ("mtype 2", "\"mtype\":1", "\"mtype\":2"),
            ("mtype as text", "\"mtype\":1", "\"mtype\":\"1\""),
            ("extra argument", "\"mtype\":1", "\"mtype\":1,\"x\":1"),
            ("extra auth field", "\"nonce\":", "\"x\":1,\"nonce\":"),
            ("extra envelope key", "{\"args\"", "{\"x\":1,\"args\""),
            (
                "duplicate argument",
                "\"mtype\":1",
                "\"mtype\":1,\"mtype\":1",
            ),
            ("null old-dialect id", &user_id, "\"user_id\":null"),
            ("numeric ts", &ts, &numeric_ts),
            (
                "dialects disagree",
                &timestamp,
                "\"timestamp\":\"1700000001\"",
            ),
            ("empty body", "\"aGVsbG8=\"", "\"\""),
            ("body not base64", "\"aGVsbG8=\"", "\"aGVsbG8\""),
            ("another tool", "send_message", "read_messages"),
            ("not JSON", "\"send_message\"}", "\"send_message\""),
        ];
        let mut edits: Vec<(&str, String)> = swaps
            .iter()
            .map(|(what, from, to)| (*what, text.replace(from, to)))
            .collect();
        edits.push((
            "args as an array",
            r#"{"tool":"send_message","args":["ab",1,"aGk=",{}]}"#.into(),
        ));
        for (what, body) in edits {
            assert_ne!(body, text, "{what}: the edit did not apply");
            assert!(!agrees(body.as_bytes()).unwrap(), "{what}: taken");
            assert_eq!(
                SignedRequest::parse(body.as_bytes()),
                SignedRequest::parse_general(body.as_bytes()),
                "{what}"
            );
        }
    }

    /// Junk a field may be replaced with: every JSON type, numbers the
    /// general parser reads differently, valid-looking text.
    const JUNK: [&str; 14] = [
        "null",
        "1",
        "-0",
        "0",
        "1.0",
        "1e0",
        "01",
        "\"\"",
        "\"1\"",
        "[]",
        "{}",
        "true",
        "\"1700000000\"",
        "\"abababababababababababababababab\"",
    ];

    /// A change to one field of a valid request.
    #[derive(Debug, Clone)]
    enum Edit {
        /// Its first letter or digit written as a `\u` escape (the same
        /// value, spelled differently).
        Escape,
        /// Its first letter or digit changed (in a pair of dialect fields,
        /// the two then disagree).
        Alter,
        /// Its value replaced.
        Junk(usize),
        /// Its key's first letter written as a `\u` escape.
        EscapeKey,
        /// Left out.
        Drop,
        /// Written twice, the second time with this value (or the same).
        Twice(Option<usize>),
        /// An unknown field added beside it.
        Extra,
    }

    fn edit() -> impl Strategy<Value = (usize, Edit)> {
        // Junk weighs most: there are many kinds of it per field.
        let kind = prop_oneof![
            1 => Just(Edit::Escape),
            1 => Just(Edit::Alter),
            1 => Just(Edit::EscapeKey),
            6 => (0..JUNK.len()).prop_map(Edit::Junk),
            1 => Just(Edit::Drop),
            2 => prop::option::of(0..JUNK.len()).prop_map(Edit::Twice),
            1 => Just(Edit::Extra),
        ];
        (0..13usize, kind)
    }

    /// Valid requests, and valid requests with one to three edits, their
    /// objects' fields in any order, with or without spaces; each with
    /// whether it was left unedited.
    fn requests() -> impl Strategy<Value = (bool, String)> {
        let base: serde_json::Value =
            serde_json::from_slice(&signed(Dialect::Both, "aGVsbG8gd29ybGQ=")).unwrap();
        let a = &base["args"];
        // (object, key, value): 0 the envelope, 1 the args, 2 the auth.
        let mut fields: Vec<(u8, &'static str, String)> = vec![
            (0, "tool", base["tool"].to_string()),
            (1, "to", a["to"].to_string()),
            (1, "mtype", a["mtype"].to_string()),
            (1, "body", a["body"].to_string()),
        ];
        for k in [
            "fingerprint",
            "user_id",
            "timestamp",
            "ts",
            "signature",
            "sig",
            "identity_key",
            "signing_key",
            "nonce",
        ] {
            fields.push((2, k, a["auth"][k].to_string()));
        }
        let edits = prop_oneof![
            1 => Just(vec![]),
            3 => prop::collection::vec(edit(), 1..=1),
            2 => prop::collection::vec(edit(), 2..=3),
        ];
        let order = prop::collection::vec(any::<prop::sample::Index>(), 13);
        (edits, order, any::<bool>()).prop_map(move |(edits, order, spaced)| {
            let mut objects: [Vec<String>; 3] = Default::default();
            for (i, (obj, key, value)) in fields.iter().enumerate() {
                let mut entries = vec![format!("\"{key}\":{value}")];
                for (_, e) in edits.iter().filter(|(t, _)| *t == i) {
                    // None after a Drop: doubling then leaves nothing to
                    // double (pushing "" made a later edit find no ':').
                    let first = entries.first().cloned();
                    match e {
                        Edit::Escape | Edit::Alter => {
                            entries = entries
                                .iter()
                                .map(|x| {
                                    let (k, v) = x.split_once(':').unwrap();
                                    let Some(at) = v.find(|c: char| c.is_ascii_alphanumeric())
                                    else {
                                        return x.clone();
                                    };
                                    let c = v.as_bytes()[at];
                                    let with = match e {
                                        Edit::Escape => format!("\\u{:04x}", c),
                                        _ if c == b'0' => "1".into(),
                                        _ => "0".into(),
                                    };
                                    format!("{k}:{}{with}{}", &v[..at], &v[at + 1..])
                                })
                                .collect()
                        }
                        Edit::EscapeKey => {
                            entries = entries
                                .iter()
                                .map(|x| format!("\"\\u{:04x}{}", x.as_bytes()[1], &x[2..]))
                                .collect()
                        }
                        Edit::Junk(j) => entries = vec![format!("\"{key}\":{}", JUNK[*j])],
                        Edit::Drop => entries.clear(),
                        Edit::Twice(None) => entries.extend(first),
                        Edit::Twice(Some(j)) => entries.push(format!("\"{key}\":{}", JUNK[*j])),
                        Edit::Extra => entries.push("\"extra\":1".into()),
                    }
                }
                objects[*obj as usize].extend(entries);
            }
            let mut shuffled = objects.map(|mut entries| {
                let mut out = Vec::new();
                for ix in &order {
                    if entries.is_empty() {
                        break;
                    }
                    out.push(entries.remove(ix.index(entries.len())));
                }
                out
            });
            shuffled[1].push(format!("\"auth\":{{{}}}", shuffled[2].join(",")));
            shuffled[0].push(format!("\"args\":{{{}}}", shuffled[1].join(",")));
            let text = format!("{{{}}}", shuffled[0].join(","));
            let text = if spaced {
                text.replace(',', ", ").replace("\":", "\": ")
            } else {
                text
            };
            (edits.is_empty(), text)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Over requests made of valid fields, escaped fields, wrong types,
        /// missing, duplicated and extra fields in any order: whenever the
        /// fast path answers, the general parser answers the same, and
        /// `parse` always equals `parse_general`; and an unedited request,
        /// in whatever order and spacing, takes the fast path.
        #[test]
        fn the_fast_path_never_disagrees_with_the_general_parser(
            (unedited, body) in requests()
        ) {
            let taken = agrees(body.as_bytes())?;
            prop_assert!(taken || !unedited, "valid request not taken: {}", body);
            prop_assert_eq!(
                SignedRequest::parse(body.as_bytes()),
                SignedRequest::parse_general(body.as_bytes())
            );
        }
    }
}
