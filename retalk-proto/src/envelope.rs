//! The plaintext inside every Olm message: a small JSON object whose `kind`
//! says what it is. Chat messages carry an id the receiver acknowledges;
//! acknowledgements carry the id they acknowledge. Kinds this client does not
//! know (0.3.x shared contacts, ...) are kept as `Other` and ignored by the
//! caller rather than failing the mailbox.

use serde_json::{Map, Value};

/// A decrypted envelope.
#[derive(Debug, Clone, PartialEq)]
pub enum Envelope {
    /// `{"id", "kind": "msg", "text", "name"}`.
    Msg {
        /// 32-hex message id, chosen by the sender.
        id: String,
        /// The message text.
        text: String,
        /// The sender's self-chosen (unverified) name; may be empty.
        name: String,
    },
    /// `{"id", "kind": "ack"}`: the sender of this decrypted message `id`.
    Ack {
        /// The acknowledged message id.
        id: String,
    },
    /// A group post (retalk 0.3.x): a chat message whose `group` object
    /// names the room and carries the sender's roster, and whose `mid` is
    /// shared by every member's copy: `{"id", "kind": "msg", "text",
    /// "name", "group": {"id", "name", "members"}, "mid"}`.
    GroupMsg {
        /// This copy's 32-hex id (acknowledged pairwise).
        id: String,
        /// The message text.
        text: String,
        /// The sender's self-chosen (unverified) name; may be empty.
        name: String,
        /// The room as the sender sees it.
        group: GroupTag,
        /// The id shared by all copies of this post (the thread id).
        mid: String,
    },
    /// `{"id", "kind": "group_leave", "group_id"}` (0.3.x): the sender left
    /// the room. 0.3.0's library adds its self-chosen `name`.
    GroupLeave {
        /// The message id.
        id: String,
        /// The room left.
        group_id: String,
        /// The sender's self-chosen name, when given.
        name: Option<String>,
    },
    /// `{"id", "kind": "contact_request", "code", "card"}` (0.3.x): redeems
    /// an invite code, carrying the sender's contact card.
    ContactRequest {
        /// The message id.
        id: String,
        /// The invite code.
        code: String,
        /// The sender's card: `fingerprint`, `name`, `identity_key`,
        /// `signing_key`, `verified` (as sent; the receiver checks it).
        card: Value,
    },
    /// `{"id", "kind": "contact", "name", "card"}` (0.3.x `share`): an
    /// introduction of a third user, their contact card.
    Contact {
        /// The message id.
        id: String,
        /// The sharer's self-chosen name.
        name: String,
        /// The shared card: `fingerprint`, `name`, and `identity_key` /
        /// `signing_key` when the sharer verified them (the receiver checks).
        card: Value,
    },
    /// Any other kind: recognised as well formed, not understood.
    Other {
        /// The `kind` field.
        kind: String,
        /// The `id` field, if any (such messages are still acknowledged).
        id: Option<String>,
    },
}

/// The `group` object of a group post: the room's id, the sender's name
/// for it, and the roster as the sender sees it (user ids, sender
/// included). Members are kept as sent; the receiver validates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupTag {
    /// The room's id (32 hex in every client we know of).
    pub id: String,
    /// The sender's label for the room (a suggestion; labels are local).
    pub name: String,
    /// The roster, as sent.
    pub members: Vec<String>,
}

impl GroupTag {
    fn to_value(&self) -> Value {
        let mut g = Map::new();
        g.insert("id".into(), self.id.as_str().into());
        g.insert("name".into(), self.name.as_str().into());
        g.insert(
            "members".into(),
            Value::Array(self.members.iter().map(|m| m.as_str().into()).collect()),
        );
        Value::Object(g)
    }

    fn from_value(v: &Value) -> Option<GroupTag> {
        let g = v.as_object()?;
        let id = g.get("id")?.as_str()?.to_owned();
        if id.is_empty() {
            return None;
        }
        let name = g
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let members = g
            .get("members")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Some(GroupTag { id, name, members })
    }
}

/// Why a plaintext is not an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a retalk envelope: {0}")]
pub struct EnvelopeError(pub String);

impl Envelope {
    /// A new chat message with a fresh random id.
    pub fn new_msg(text: impl Into<String>, name: impl Into<String>) -> Self {
        Envelope::Msg {
            id: new_id(),
            text: text.into(),
            name: name.into(),
        }
    }

    /// The envelope's id, if it has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Envelope::Msg { id, .. }
            | Envelope::Ack { id }
            | Envelope::GroupMsg { id, .. }
            | Envelope::GroupLeave { id, .. }
            | Envelope::ContactRequest { id, .. }
            | Envelope::Contact { id, .. } => Some(id),
            Envelope::Other { id, .. } => id.as_deref(),
        }
    }

    /// Parses decrypted bytes.
    pub fn parse(plaintext: &[u8]) -> Result<Self, EnvelopeError> {
        let value: Value = serde_json::from_slice(plaintext)
            .map_err(|e| EnvelopeError(format!("not JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| EnvelopeError("not an object".into()))?;
        let str_field = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
        let kind = str_field("kind").ok_or_else(|| EnvelopeError("no kind".into()))?;
        let id = str_field("id");
        Ok(match kind.as_str() {
            "msg" if obj.get("group").and_then(GroupTag::from_value).is_some() => {
                let id = id.ok_or_else(|| EnvelopeError("msg without id".into()))?;
                Envelope::GroupMsg {
                    text: str_field("text")
                        .ok_or_else(|| EnvelopeError("msg without text".into()))?,
                    name: str_field("name").unwrap_or_default(),
                    group: obj
                        .get("group")
                        .and_then(GroupTag::from_value)
                        .ok_or_else(|| EnvelopeError("bad group".into()))?,
                    mid: str_field("mid")
                        .filter(|m| !m.is_empty())
                        .unwrap_or_else(|| id.clone()),
                    id,
                }
            }
            "group_leave" if id.is_some() => Envelope::GroupLeave {
                id: id.unwrap_or_default(),
                group_id: str_field("group_id").unwrap_or_default(),
                name: str_field("name"),
            },
            "contact" if id.is_some() => Envelope::Contact {
                id: id.unwrap_or_default(),
                name: str_field("name").unwrap_or_default(),
                card: obj
                    .get("card")
                    .filter(|c| c.is_object())
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Map::new())),
            },
            "contact_request" if id.is_some() => Envelope::ContactRequest {
                id: id.unwrap_or_default(),
                code: str_field("code").unwrap_or_default(),
                card: obj
                    .get("card")
                    .filter(|c| c.is_object())
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Map::new())),
            },
            "msg" => Envelope::Msg {
                id: id.ok_or_else(|| EnvelopeError("msg without id".into()))?,
                text: str_field("text").ok_or_else(|| EnvelopeError("msg without text".into()))?,
                name: str_field("name").unwrap_or_default(),
            },
            "ack" => Envelope::Ack {
                id: id.ok_or_else(|| EnvelopeError("ack without id".into()))?,
            },
            _ => Envelope::Other { kind, id },
        })
    }

    /// The plaintext bytes to encrypt.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut m = Map::new();
        match self {
            Envelope::Msg { id, text, name } => {
                m.insert("id".into(), id.as_str().into());
                m.insert("kind".into(), "msg".into());
                m.insert("text".into(), text.as_str().into());
                m.insert("name".into(), name.as_str().into());
            }
            Envelope::Ack { id } => {
                m.insert("id".into(), id.as_str().into());
                m.insert("kind".into(), "ack".into());
            }
            Envelope::GroupMsg {
                id,
                text,
                name,
                group,
                mid,
            } => {
                m.insert("id".into(), id.as_str().into());
                m.insert("kind".into(), "msg".into());
                m.insert("text".into(), text.as_str().into());
                m.insert("name".into(), name.as_str().into());
                m.insert("group".into(), group.to_value());
                m.insert("mid".into(), mid.as_str().into());
            }
            Envelope::GroupLeave { id, group_id, name } => {
                m.insert("id".into(), id.as_str().into());
                m.insert("kind".into(), "group_leave".into());
                m.insert("group_id".into(), group_id.as_str().into());
                if let Some(n) = name {
                    m.insert("name".into(), n.as_str().into());
                }
            }
            Envelope::ContactRequest { id, code, card } => {
                m.insert("id".into(), id.as_str().into());
                m.insert("kind".into(), "contact_request".into());
                m.insert("code".into(), code.as_str().into());
                m.insert("card".into(), card.clone());
            }
            Envelope::Contact { id, name, card } => {
                m.insert("id".into(), id.as_str().into());
                m.insert("kind".into(), "contact".into());
                m.insert("name".into(), name.as_str().into());
                m.insert("card".into(), card.clone());
            }
            Envelope::Other { kind, id } => {
                if let Some(id) = id {
                    m.insert("id".into(), id.as_str().into());
                }
                m.insert("kind".into(), kind.as_str().into());
            }
        }
        serde_json::to_vec(&Value::Object(m)).expect("JSON values always serialize")
    }
}

/// A fresh random 32-hex id (message ids, group ids).
pub fn new_id() -> String {
    let id: [u8; 16] = rand::random();
    hex::encode(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_030_group_post_parses_and_round_trips() {
        let wire = br#"{"id": "aa", "kind": "msg", "text": "hi", "name": "bob",
            "group": {"id": "g1", "name": "team", "members": ["x", 3, "y"]}, "mid": "m1"}"#;
        let e = Envelope::parse(wire).unwrap();
        let Envelope::GroupMsg { group, mid, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(
            (group.members.as_slice(), mid.as_str()),
            (&["x".to_string(), "y".to_string()][..], "m1")
        );
        assert_eq!(Envelope::parse(&e.to_bytes()).unwrap(), e);
        let v: Value = serde_json::from_slice(&e.to_bytes()).unwrap();
        assert_eq!(v["group"]["members"], serde_json::json!(["x", "y"]));
        assert_eq!(v["kind"], "msg");
    }

    #[test]
    fn a_malformed_group_is_a_plain_message_and_leaves_and_requests_parse() {
        let e = Envelope::parse(br#"{"id":"a","kind":"msg","text":"t","group":"x"}"#).unwrap();
        assert!(matches!(e, Envelope::Msg { .. }));
        let e = Envelope::parse(br#"{"id":"a","kind":"group_leave","group_id":"g"}"#).unwrap();
        assert_eq!(
            e,
            Envelope::GroupLeave {
                id: "a".into(),
                group_id: "g".into(),
                name: None
            }
        );
        assert_eq!(Envelope::parse(&e.to_bytes()).unwrap(), e);
        let e = Envelope::parse(
            br#"{"id":"a","kind":"contact_request","code":"c","card":{"fingerprint":"f"}}"#,
        )
        .unwrap();
        assert!(matches!(&e, Envelope::ContactRequest { code, .. } if code == "c"));
        assert_eq!(Envelope::parse(&e.to_bytes()).unwrap(), e);
    }
}
