//! Saved peers: local names for user ids, with optional pinned identity
//! keys.
//!
//! A user id already pins a peer's keys (it is their hash), so a pin is
//! extra: the Curve25519 identity key learnt out of band, checked against
//! every key set the relay serves for that id. A saved name is shown
//! instead of the sender's self-chosen `~name`, and takes priority over a
//! raw id when resolving what the user typed.

use crate::proto::{IdentityKey, UserId};
use crate::store::PeerRow;

use super::{ClientError, Peer, User};

impl User {
    /// Saves `name` for `id` (replacing what that name meant before), with
    /// an optional pinned identity key. Refuses a pin that contradicts the
    /// key of a session already established with `id`.
    pub fn add_peer(&self, name: &str, id: &UserId, pin: Option<&str>) -> Result<(), ClientError> {
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(ClientError::InvalidArgument(
                "a peer name must be non-empty and printable".into(),
            ));
        }
        if let Some(pin) = pin {
            IdentityKey::parse(pin, "pin").map_err(|_| {
                ClientError::InvalidArgument(
                    "a pin must be a Curve25519 identity key in unpadded base64".into(),
                )
            })?;
        }
        self.store.tx(|t| {
            if let Some(pin) = pin {
                if t.session_keys(id.as_str())?.iter().any(|k| k != pin) {
                    return Err(ClientError::PinMismatch {
                        peer: id.clone(),
                        detail: "the pinned key differs from the key of the session already established with this peer".into(),
                    });
                }
            }
            t.peer_upsert(&PeerRow {
                name: name.to_owned(),
                id: id.clone(),
                pin: pin.map(str::to_owned),
                signing_key: None,
            })?;
            Ok(())
        })
    }

    /// Every saved peer, sorted by name.
    pub fn peers(&self) -> Result<Vec<Peer>, ClientError> {
        let rows = self.store.read(|t| t.peers())?;
        Ok(rows
            .into_iter()
            .map(|r| Peer {
                id: r.id,
                name: r.name,
                pin: r.pin,
            })
            .collect())
    }

    /// What the user typed, as a user id: a saved name first, else a
    /// 32-hex id (either case), else [`ClientError::UnknownPeer`].
    pub fn resolve_peer(&self, name_or_id: &str) -> Result<UserId, ClientError> {
        if let Some(row) = self.store.read(|t| t.peer_by_name(name_or_id))? {
            return Ok(row.id);
        }
        UserId::parse(&name_or_id.to_ascii_lowercase(), "peer")
            .map_err(|_| ClientError::UnknownPeer(name_or_id.to_owned()))
    }
}

impl User {
    /// How many Olm sessions this identity holds with `peer` (one normally;
    /// two after both sides started a conversation at the same time).
    pub fn session_count(&self, peer: &UserId) -> Result<usize, ClientError> {
        Ok(self.store.tx(|t| t.session_count(peer.as_str()))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Services share a `User` between tasks: it and its futures must be
    /// `Send` (and the user `Sync`).
    #[allow(dead_code)]
    fn futures_are_send(u: &User, id: &UserId) {
        fn send<T: Send>(_: T) {}
        fn sync<T: Sync>(_: &T) {}
        sync(u);
        send(u.send(id, "x"));
        send(u.receive());
        send(u.receive_inbox(None));
        send(u.maintain(Default::default()));
        send(u.ensure_published());
        send(u.flush_outbox(std::time::Duration::ZERO));
        send(User::open("x".as_ref(), "y"));
    }
}
