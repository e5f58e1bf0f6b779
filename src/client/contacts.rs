//! `user.contacts()`: saved peers as 0.3.x calls them, with verified keys.
//!
//! A contact is a local name for a user id. `verify` checks a contact's two
//! public keys against its id (from the relay, or given by hand) and records
//! them: the identity key becomes the contact's pin, so every later key set
//! the relay serves for that id must match.

use crate::proto::tools::GetKeys;
use crate::proto::{fingerprint, IdentityKey, UserId};
use crate::store::PeerRow;

use super::{ClientError, User};

/// A saved contact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Contact {
    /// The local name.
    pub name: String,
    /// The contact's user id.
    pub id: UserId,
    /// The verified (or pinned) Curve25519 identity key, base64.
    pub identity_key: Option<String>,
    /// The verified Ed25519 signing key, base64.
    pub signing_key: Option<String>,
}

impl Contact {
    /// Both keys were checked against the id.
    pub fn verified(&self) -> bool {
        self.identity_key.is_some() && self.signing_key.is_some()
    }

    /// The contact's card, as `share` sends it and 0.3.x's `contacts --show
    /// --json` prints it: `fingerprint`, `name` (`as_name`, else the saved
    /// one; empty for a contact saved by id alone), both keys only when
    /// they were verified, and `verified`.
    pub fn card(&self, as_name: Option<&str>) -> serde_json::Value {
        let id = self.id.to_string();
        let name = as_name.map(str::to_owned).unwrap_or_else(|| {
            if self.name == id {
                String::new()
            } else {
                self.name.clone()
            }
        });
        let verified = self.verified();
        let key = |k: &Option<String>| {
            if verified {
                k.clone().unwrap_or_default()
            } else {
                String::new()
            }
        };
        serde_json::json!({
            "fingerprint": id,
            "name": name,
            "identity_key": key(&self.identity_key),
            "signing_key": key(&self.signing_key),
            "verified": verified,
        })
    }
}

/// Checks that `identity_key` is a Curve25519 key and that the two keys
/// hash to `id` ([`ClientError::PinMismatch`] otherwise).
pub(super) fn check_keys(
    id: &UserId,
    identity_key: &str,
    signing_key: &str,
) -> Result<(), ClientError> {
    IdentityKey::parse(identity_key, "identity key").map_err(|_| {
        ClientError::InvalidArgument("the identity key is not a Curve25519 key in base64".into())
    })?;
    let got = fingerprint(identity_key, signing_key);
    if got != id.as_str() {
        return Err(ClientError::PinMismatch {
            peer: id.clone(),
            detail: format!("the keys hash to {got}, not to this id"),
        });
    }
    Ok(())
}

/// How [`Contacts::add`] treats a name already in use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddOptions {
    /// Re-point a name that already stands for another id.
    pub replace: bool,
}

/// What [`Contacts::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// A new name.
    New,
    /// The name already meant this id: nothing changed.
    Unchanged,
    /// The name meant another id and was re-pointed (`replace`).
    Replaced,
}

/// The contacts of one identity; see [`User::contacts`].
pub struct Contacts<'u> {
    pub(super) user: &'u User,
}

impl User {
    /// This identity's saved contacts.
    pub fn contacts(&self) -> Contacts<'_> {
        Contacts { user: self }
    }
}

fn to_contact(r: PeerRow) -> Option<Contact> {
    Some(Contact {
        id: r.id,
        name: r.name,
        identity_key: r.pin,
        signing_key: r.signing_key,
    })
}

impl Contacts<'_> {
    /// Saves `name` for `id`. A name that already stands for another id is
    /// refused ([`ClientError::NameTaken`]) unless `opts.replace`.
    pub fn add(&self, name: &str, id: &UserId, opts: AddOptions) -> Result<Added, ClientError> {
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            return Err(ClientError::InvalidArgument(
                "a contact name must be non-empty and printable".into(),
            ));
        }
        self.user.store.tx(|t| {
            let outcome = match t.peer_by_name(name)? {
                Some(old) if old.id == *id => return Ok(Added::Unchanged),
                Some(old) if !opts.replace => {
                    return Err(ClientError::NameTaken {
                        name: name.to_owned(),
                        id: old.id,
                    })
                }
                Some(old) => {
                    // The contact that held the name stays, unnamed (by its
                    // id), unless it has another name, as in 0.3.x.
                    if t.peers_for_id(old.id.as_str())?.len() == 1 {
                        t.peer_upsert(&PeerRow {
                            name: old.id.to_string(),
                            ..old
                        })?;
                    }
                    Added::Replaced
                }
                None => Added::New,
            };
            // Keys already verified for this id (under another name) carry over.
            let known = t
                .peers_for_id(id.as_str())?
                .into_iter()
                .find(|p| p.pin.is_some());
            t.peer_upsert(&PeerRow {
                name: name.to_owned(),
                id: id.clone(),
                pin: known.as_ref().and_then(|k| k.pin.clone()),
                signing_key: known.and_then(|k| k.signing_key),
            })?;
            Ok(outcome)
        })
    }

    /// Every contact, sorted by name. Read-only.
    pub fn list(&self) -> Result<Vec<Contact>, ClientError> {
        let rows = self.user.store.read(|t| t.peers())?;
        Ok(rows.into_iter().filter_map(to_contact).collect())
    }

    /// The contact named `name_or_id`, or the first saved for that id.
    pub fn get(&self, name_or_id: &str) -> Result<Option<Contact>, ClientError> {
        let by_name = self.user.store.read(|t| t.peer_by_name(name_or_id))?;
        if let Some(r) = by_name {
            return Ok(to_contact(r));
        }
        let id = name_or_id.trim().to_ascii_lowercase();
        let rows = self.user.store.read(|t| t.peers_for_id(&id))?;
        Ok(rows.into_iter().filter_map(to_contact).next())
    }

    /// Forgets a contact by name, or every name saved for an id. Returns the
    /// names removed (none: nothing matched).
    pub fn remove(&self, name_or_id: &str) -> Result<Vec<String>, ClientError> {
        self.user.store.tx(|t| {
            if t.peer_delete(name_or_id)? {
                return Ok(vec![name_or_id.to_owned()]);
            }
            let id = name_or_id.trim().to_ascii_lowercase();
            let names: Vec<String> = t.peers_for_id(&id)?.into_iter().map(|p| p.name).collect();
            for n in &names {
                t.peer_delete(n)?;
            }
            Ok(names)
        })
    }

    /// Checks `identity_key` and `signing_key` against `id` (they must hash
    /// to it) and records them for every name saved for `id`. Refuses with
    /// [`ClientError::PinMismatch`] keys that do not hash to the id or
    /// contradict a session already established.
    pub fn verify_keys(
        &self,
        id: &UserId,
        identity_key: &str,
        signing_key: &str,
    ) -> Result<(), ClientError> {
        check_keys(id, identity_key, signing_key)?;
        self.user.store.tx(|t| {
            if t.session_keys(id.as_str())?
                .iter()
                .any(|k| k != identity_key)
            {
                return Err(ClientError::PinMismatch {
                    peer: id.clone(),
                    detail: "the keys differ from those of the session already established".into(),
                });
            }
            if t.peer_set_keys(id, identity_key, signing_key)? == 0 {
                return Err(ClientError::UnknownPeer(id.to_string()));
            }
            Ok(())
        })
    }

    /// Fetches `id`'s keys from the relay, checks them against the id and
    /// records them (see [`verify_keys`](Self::verify_keys)). Returns the
    /// two keys.
    pub async fn verify_from_relay(&self, id: &UserId) -> Result<(String, String), ClientError> {
        let (ik, sk) = self.fetch_keys(id).await?;
        self.verify_keys(id, &ik, &sk)?;
        Ok((ik, sk))
    }

    /// Fetches `id`'s keys from the relay and checks that they hash to the
    /// id ([`ClientError::PinMismatch`] otherwise), recording nothing: for
    /// a contact kept elsewhere (the owner-wide list). Returns the identity
    /// and signing keys.
    pub async fn fetch_keys(&self, id: &UserId) -> Result<(String, String), ClientError> {
        self.user.relay()?;
        let keys = self
            .user
            .call(self.user.signer(), &GetKeys { peer: id.clone() })
            .await?;
        let got = fingerprint(&keys.identity_key, &keys.signing_key);
        if got != id.as_str() {
            return Err(ClientError::PinMismatch {
                peer: id.clone(),
                detail: format!("the relay served keys hashing to {got}, not to this id"),
            });
        }
        Ok((keys.identity_key, keys.signing_key))
    }
}

/// A shared card made ready for the contact inbox: `None` unless its
/// `fingerprint` is a user id and its keys, if any, are both there and hash
/// to it (a card's word is never trusted).
pub(crate) fn stage_card(
    card: &serde_json::Value,
    from: &UserId,
    from_name: &str,
    msg_id: &str,
) -> Option<crate::store::StagedContact> {
    let field = |k: &str| {
        card.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let fp = UserId::parse(&field("fingerprint").to_ascii_lowercase(), "card").ok()?;
    let (ik, sk) = (field("identity_key"), field("signing_key"));
    let keys = match (ik.is_empty(), sk.is_empty()) {
        (true, true) => None,
        (false, false) if fp == fingerprint(&ik, &sk) => Some((ik, sk)),
        _ => return None,
    };
    Some(crate::store::StagedContact {
        fingerprint: fp,
        name: super::error::sanitize(&field("name")).trim().to_owned(),
        keys,
        from: from.clone(),
        from_name: from_name.to_owned(),
        msg_id: msg_id.to_owned(),
    })
}

/// A card a peer shared, waiting in the contact inbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SharedCard {
    /// The introduced user's id.
    pub fingerprint: UserId,
    /// The name the sharer recommends (may be empty).
    pub name: String,
    /// Its identity key, when the card carried checked keys.
    pub identity_key: Option<String>,
    /// Its signing key, likewise.
    pub signing_key: Option<String>,
    /// Who shared it.
    pub from: UserId,
    /// The sharer's name as shown then.
    pub from_name: String,
    /// The message that carried it.
    pub msg_id: String,
}

impl SharedCard {
    /// The card carries keys checked against its id.
    pub fn verified(&self) -> bool {
        self.identity_key.is_some() && self.signing_key.is_some()
    }
}

impl Contacts<'_> {
    /// Sends `card` (see [`Contact::card`]) to `to`, encrypted, as
    /// 0.3.x's `share` does: kept in the outbox until `to` acknowledges it.
    /// Returns the message id.
    pub async fn share(&self, to: &UserId, card: serde_json::Value) -> Result<String, ClientError> {
        let user = self.user;
        user.relay()?;
        if *to == user.user_id() {
            return Err(ClientError::SelfSend(to.clone()));
        }
        let _lock = user.lock().await?;
        let id: [u8; 16] = rand::random();
        let envelope = crate::proto::Envelope::Contact {
            id: hex::encode(id),
            name: user.name.clone(),
            card,
        };
        user.send_envelope_locked(to, &envelope, false).await
    }

    /// The cards peers shared with this identity, not imported yet.
    pub fn inbox(&self) -> Result<Vec<SharedCard>, ClientError> {
        let rows = self.user.store.read(|t| t.contact_inbox())?;
        Ok(rows
            .into_iter()
            .map(|r| SharedCard {
                fingerprint: r.fingerprint,
                name: r.name,
                identity_key: r.keys.as_ref().map(|(ik, _)| ik.clone()),
                signing_key: r.keys.map(|(_, sk)| sk),
                from: r.from,
                from_name: r.from_name,
                msg_id: r.msg_id,
            })
            .collect())
    }

    /// Forgets a staged card (after it was imported).
    pub fn inbox_remove(&self, fingerprint: &UserId) -> Result<(), ClientError> {
        Ok(self
            .user
            .store
            .tx(|t| t.contact_inbox_delete(fingerprint.as_str()))?)
    }
}
