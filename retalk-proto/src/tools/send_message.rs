//! `send_message`: store one Olm ciphertext in a recipient's mailbox. The
//! recorded sender is always the authenticated caller.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Args, Tool};
use crate::error::WireError;
use crate::ids::UserId;

/// The Olm message type, as numbered on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum MessageType {
    /// 0: a pre-key message, which can start a session.
    PreKey,
    /// 1: a normal message on an existing session.
    Normal,
}

impl TryFrom<u8> for MessageType {
    type Error = WireError;
    fn try_from(n: u8) -> Result<Self, WireError> {
        match n {
            0 => Ok(MessageType::PreKey),
            1 => Ok(MessageType::Normal),
            _ => Err(WireError::BadRequest(format!(
                "mtype must be 0 (pre-key) or 1 (normal), got {n}"
            ))),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> u8 {
        match t {
            MessageType::PreKey => 0,
            MessageType::Normal => 1,
        }
    }
}

/// The request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMessage {
    /// The recipient.
    pub to: UserId,
    /// Pre-key or normal.
    pub mtype: MessageType,
    /// The Olm message bytes in padded standard base64. Kept as text: the
    /// duplicate and refusal checks hash this exact text.
    pub body: String,
}

impl SendMessage {
    /// What `body` must be: non-empty padded standard base64 (checked by
    /// both request parsers, so they accept the same bodies).
    ///
    /// Exactly what `STANDARD.decode(body).is_ok()` accepts (canonical
    /// padding, no stray bits in the last symbol; a property test holds
    /// the two equal), checked without decoding: the relay never uses the
    /// bytes, and decoding into a fresh buffer was most of what checking a
    /// body cost its verifier threads (about 3,000 instructions per send).
    pub(crate) fn body_is_valid(body: &str) -> bool {
        is_padded_base64(body.as_bytes())
    }

    /// A request for raw Olm message bytes.
    pub fn new(to: UserId, mtype: MessageType, ciphertext: &[u8]) -> Self {
        SendMessage {
            to,
            mtype,
            body: STANDARD.encode(ciphertext),
        }
    }
}

/// Each byte's value in the standard base64 alphabet, or `INVALID`.
const INVALID: u8 = 0xff;
const SYMBOLS: [u8; 256] = {
    let mut table = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Non-empty, standard alphabet, padded to whole 4-symbol groups with `=`
/// only at the end (`xx==` or `xxx=`), and no bits set past the last whole
/// byte: the padded standard base64 that `base64`'s `STANDARD` engine
/// decodes (see [`SendMessage::body_is_valid`]).
fn is_padded_base64(text: &[u8]) -> bool {
    if text.is_empty() || !text.len().is_multiple_of(4) {
        return false;
    }
    let (head, last) = text.split_at(text.len() - 4);
    // Valid symbols are below 64 and `INVALID` has the top bit: one OR per
    // byte and no branch (a body is a few hundred bytes, all valid).
    if head.iter().fold(0u8, |seen, &b| seen | SYMBOLS[b as usize]) & 0x80 != 0 {
        return false;
    }
    let [a, b, c, d] = [last[0], last[1], last[2], last[3]].map(|b| SYMBOLS[b as usize]);
    match (last[2], last[3]) {
        // `xx==`: one byte; the second symbol's low 4 bits are past it.
        (b'=', b'=') => a != INVALID && b != INVALID && b & 0x0f == 0,
        // `xxx=`: two bytes; the third symbol's low 2 bits are past them.
        (_, b'=') => a != INVALID && b != INVALID && c != INVALID && c & 0x03 == 0,
        _ => a != INVALID && b != INVALID && c != INVALID && d != INVALID,
    }
}

/// The relay's answer: stored, or refused because the recipient signed a
/// refusal of this exact ciphertext (0.3.x `nack`).
///
/// Deserialized by hand: serde's untagged enums buffer numbers in a way
/// that fails under serde_json's `arbitrary_precision` (which this
/// workspace enables), so `{"message_id": 1, "ts": 1.5}` would not parse.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SendOutcome {
    /// Refused; `sig` is the recipient's signature over `nack|<them>|<hash>`.
    Refused {
        /// Always true.
        refused: bool,
        /// sha256 hex of the body.
        hash: String,
        /// The recipient's refusal signature.
        sig: String,
    },
    /// Stored (and on disk) under this id.
    Stored {
        /// The relay's id for the message.
        message_id: i64,
        /// When it was stored, seconds since the epoch.
        ts: f64,
    },
}

impl<'de> Deserialize<'de> for SendOutcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = Value::deserialize(d)?;
        let obj = v
            .as_object()
            .ok_or_else(|| D::Error::custom("send_message result must be an object"))?;
        if obj.get("refused").and_then(Value::as_bool) == Some(true) {
            let text = |k: &str| {
                obj.get(k)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| D::Error::custom(format!("refusal without {k}")))
            };
            return Ok(SendOutcome::Refused {
                refused: true,
                hash: text("hash")?,
                sig: text("sig")?,
            });
        }
        Ok(SendOutcome::Stored {
            message_id: obj
                .get("message_id")
                .and_then(Value::as_i64)
                .ok_or_else(|| D::Error::custom("message_id must be an integer"))?,
            ts: obj
                .get("ts")
                .and_then(Value::as_f64)
                .ok_or_else(|| D::Error::custom("ts must be a number"))?,
        })
    }
}

impl Tool for SendMessage {
    const NAME: &'static str = "send_message";
    type Response = SendOutcome;

    fn from_args(args: &Map<String, Value>) -> Result<Self, WireError> {
        let a = Args::new(Self::NAME, args, &["to", "mtype", "body"])?;
        let to = a.user_id("to")?;
        let mtype = match a.required("mtype")?.as_u64() {
            Some(n @ (0 | 1)) => MessageType::try_from(n as u8)?,
            _ => {
                return Err(WireError::BadRequest(
                    "send_message: argument \"mtype\" must be 0 (pre-key) or 1 (normal)".into(),
                ))
            }
        };
        let body = a.string("body")?;
        if !SendMessage::body_is_valid(body) {
            return Err(WireError::BadRequest(
                "send_message: argument \"body\" must be non-empty padded standard base64".into(),
            ));
        }
        Ok(SendMessage {
            to,
            mtype,
            body: body.to_owned(),
        })
    }

    fn to_args(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("to".into(), self.to.as_str().into());
        m.insert("mtype".into(), u8::from(self.mtype).into());
        m.insert("body".into(), self.body.clone().into());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_parse() {
        let stored: SendOutcome =
            serde_json::from_str(r#"{"message_id": 7, "ts": 1700000000.25}"#).unwrap();
        assert_eq!(
            stored,
            SendOutcome::Stored {
                message_id: 7,
                ts: 1700000000.25
            }
        );
        let refused: SendOutcome =
            serde_json::from_str(r#"{"refused": true, "hash": "ab", "sig": "cd"}"#).unwrap();
        assert!(matches!(refused, SendOutcome::Refused { .. }));
        assert!(serde_json::from_str::<SendOutcome>(r#"{"message_id": "x"}"#).is_err());
        let back: SendOutcome =
            serde_json::from_str(&serde_json::to_string(&stored).unwrap()).unwrap();
        assert_eq!(back, stored);
    }

    /// What the `base64` crate's `STANDARD` engine decodes (the rule
    /// before the check stopped decoding).
    fn decodes(text: &[u8]) -> bool {
        !text.is_empty() && STANDARD.decode(text).is_ok()
    }

    #[test]
    fn body_check_examples() {
        for good in [
            "AA==", "AAA=", "AAAA", "Zg==", "Zm8=", "Zm9v", "+/+/", "AAAAAQ==",
        ] {
            assert!(is_padded_base64(good.as_bytes()), "{good}");
            assert!(decodes(good.as_bytes()), "{good}");
        }
        for bad in [
            "", "A", "AA", "AAA", "AA=", "A===", "====", "AB==", "AAB=", "A=AA", "AA=A", "=AAA",
            "AA==AAAA", "AAAA ", " AAA", "AA-_", "AAAA\n", "Zg", "Zm8",
        ] {
            assert!(!is_padded_base64(bad.as_bytes()), "{bad:?}");
            assert!(!decodes(bad.as_bytes()), "{bad:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Strings over the alphabet, padding and a few strangers, of
        /// every length near whole groups: the check and the decoder agree.
        #[test]
        fn body_check_is_the_decoders_rule(text in "[A-Za-z0-9+/=_\\-. \n\u{e9}]{0,14}") {
            proptest::prop_assert_eq!(is_padded_base64(text.as_bytes()), decodes(text.as_bytes()));
        }

        /// Encodings of any bytes pass; with one symbol or bit changed,
        /// the check and the decoder still agree (the last symbol's stray
        /// bits included).
        #[test]
        fn body_check_agrees_on_encodings(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..40),
            at in proptest::prelude::any::<proptest::sample::Index>(),
            to in proptest::prelude::any::<u8>(),
        ) {
            let mut text = STANDARD.encode(&bytes).into_bytes();
            proptest::prop_assert!(is_padded_base64(&text));
            let i = at.index(text.len());
            text[i] = to;
            proptest::prop_assert_eq!(is_padded_base64(&text), decodes(&text));
            text[i] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="[usize::from(to) % 65];
            proptest::prop_assert_eq!(is_padded_base64(&text), decodes(&text));
        }
    }
}
