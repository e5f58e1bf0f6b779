//! Olm sessions: checking the keys a relay serves, choosing the session to
//! send on, and starting new ones.
//!
//! The relay is not trusted to serve the right keys. A user id is the hash
//! of its owner's two public keys, so every key set served for a peer is
//! hashed and compared with the peer's id (and with the identity key pinned
//! for it, if any) before any session is made from it. A mismatch is
//! [`ClientError::PinMismatch`] and nothing is encrypted.
//!
//! A peer can have several sessions (crossed initiation makes two). Sending
//! uses the most recently used one: that is the one the peer last sent on,
//! which every client generation still holds (the 0.0.1 reference keeps only
//! its latest session per peer), so replies converge on one session.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use vodozemac::olm::{Account, SessionConfig};
use vodozemac::Curve25519PublicKey;

use crate::proto::tools::{ClaimKey, MessageType};
use crate::proto::{fingerprint, Envelope, Tool, UserId};
use crate::store::StoredSession;

use super::{ClientError, User};

/// Olm message format: v1 (truncated MACs), what every reference client
/// speaks.
pub(crate) fn session_config() -> SessionConfig {
    SessionConfig::version_1()
}

pub(crate) fn bad_key(tool: &'static str) -> ClientError {
    ClientError::BadResponse {
        tool,
        detail: "a served key is not a valid Curve25519 key".into(),
    }
}

impl User {
    /// Refuses keys that do not hash to `peer` or contradict its pin.
    pub(crate) fn verify_keys(
        &self,
        peer: &UserId,
        identity_key: &str,
        signing_key: &str,
    ) -> Result<(), ClientError> {
        let got = fingerprint(identity_key, signing_key);
        if got != peer.as_str() {
            return Err(ClientError::PinMismatch {
                peer: peer.clone(),
                detail: format!("the relay served keys whose fingerprint is {got}"),
            });
        }
        let pinned = self.store.tx(|t| t.peers_for_id(peer.as_str()))?;
        if pinned
            .iter()
            .filter_map(|p| p.pin.as_deref())
            .any(|pin| pin != identity_key)
        {
            return Err(ClientError::PinMismatch {
                peer: peer.clone(),
                detail: "the relay served an identity key other than the one pinned for this peer"
                    .into(),
            });
        }
        Ok(())
    }

    /// The session to send to `peer` on: the most recently used one, or a
    /// new outbound session from a claimed one-time (or fallback) key.
    /// A new session is not saved here; the caller saves it together with
    /// what it encrypted.
    pub(crate) async fn session_for_send(
        &self,
        account: &Account,
        peer: &UserId,
    ) -> Result<StoredSession, ClientError> {
        if let Some(s) = self
            .store
            .tx(|t| t.sessions(peer.as_str()))?
            .into_iter()
            .next()
        {
            return Ok(s);
        }
        let claimed = self.call(account, &ClaimKey { peer: peer.clone() }).await?;
        self.verify_keys(peer, &claimed.identity_key, &claimed.signing_key)?;
        let ik = Curve25519PublicKey::from_base64(&claimed.identity_key)
            .map_err(|_| bad_key(ClaimKey::NAME))?;
        let otk = Curve25519PublicKey::from_base64(&claimed.one_time_key)
            .map_err(|_| bad_key(ClaimKey::NAME))?;
        let session = account
            .create_outbound_session(session_config(), ik, otk)
            .map_err(|e| ClientError::Crypto(format!("cannot start a session: {e}")))?;
        Ok(StoredSession {
            session_id: session.session_id(),
            peer_key: claimed.identity_key,
            session,
        })
    }
}

/// Encrypts an envelope, advancing the session's ratchet.
pub(crate) fn encrypt(
    session: &mut StoredSession,
    envelope: &Envelope,
) -> Result<(MessageType, String), ClientError> {
    let plaintext = zeroize::Zeroizing::new(envelope.to_bytes());
    let msg = session
        .session
        .encrypt(plaintext.as_slice())
        .map_err(|e| ClientError::Crypto(format!("cannot encrypt: {e}")))?;
    let (mtype, bytes) = msg.to_parts();
    let mtype = if mtype == 0 {
        MessageType::PreKey
    } else {
        MessageType::Normal
    };
    Ok((mtype, STANDARD.encode(bytes)))
}
