//! Sending, and the outbox that makes delivery survive relay loss.
//!
//! A chat message is encrypted, then saved in the outbox together with the
//! advanced session (one transaction), then uploaded. It stays in the
//! outbox until its recipient's encrypted acknowledgement arrives;
//! [`User::flush_outbox`] and [`User::maintain`] upload it again, byte for
//! byte, when it is overdue or the relay was replaced. The recipient drops
//! copies it already decrypted (by the body's hash) and acknowledges them
//! again, so re-sending is always safe.
//!
//! Acknowledgements owed to senders are queued in the store by the receive
//! pipeline; their ciphertext is saved with the session before uploading,
//! so a crash between the two re-sends the same bytes later instead of
//! leaving a gap in the ratchet.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use vodozemac::olm::Account;

use crate::proto::tools::{GetKeys, MessageType, Nack, SendMessage, SendOutcome};
use crate::proto::{Envelope, SigningKey, Tool, UserId, WireError};
use crate::store::{self, OutboxRow, StoredSession};

/// Acknowledgements uploaded at once.
const ACK_UPLOADS: usize = 4;

use super::failpoint;
use super::sessions::encrypt;
use super::{ClientError, User};

pub(crate) fn body_hash(body: &str) -> String {
    hex::encode(Sha256::digest(body.as_bytes()))
}

impl User {
    /// Encrypts `text` for `to` and uploads it; returns the message id
    /// (32 hex, the id the recipient sees). The first message to a peer
    /// claims one of its one-time keys (or its fallback key) and checks the
    /// served keys against `to` and its pin.
    ///
    /// The ciphertext stays in the outbox until `to` acknowledges it. If the
    /// upload fails the message is withdrawn from the outbox and the error
    /// returned (nothing will be sent later); if the process dies before the
    /// upload, the next [`maintain`](Self::maintain) or
    /// [`flush_outbox`](Self::flush_outbox) sends it.
    pub async fn send(&self, to: &UserId, text: &str) -> Result<String, ClientError> {
        self.relay()?;
        if *to == self.user_id() {
            return Err(ClientError::SelfSend(to.clone()));
        }
        let _lock = self.lock().await?;
        let envelope = Envelope::new_msg(text, self.name.as_str());
        self.send_envelope_locked(to, &envelope, false).await
    }

    /// Encrypts `envelope` (which has an id) for `to`, keeps it in the
    /// outbox and uploads it; the lock is held. When the upload fails, the
    /// copy is withdrawn, unless `keep_on_failure` (a group copy: the
    /// outbox re-sends it later) or the relay does not know `to` yet.
    pub(crate) async fn send_envelope_locked(
        &self,
        to: &UserId,
        envelope: &Envelope,
        keep_on_failure: bool,
    ) -> Result<String, ClientError> {
        let account = self.signer();
        let id = envelope.id().unwrap_or_default().to_owned();
        let (mtype, body) = self
            .encrypt_and_store(account, to, envelope, Some(&id))
            .await?;
        failpoint::hit("send:stored");
        let req = SendMessage {
            to: to.clone(),
            mtype,
            body,
        };
        match self.call(account, &req).await {
            Ok(SendOutcome::Stored { .. }) => Ok(id),
            Ok(SendOutcome::Refused { .. }) => {
                self.store.tx(|t| t.outbox_delete(&id, None))?;
                Err(ClientError::Relay {
                    tool: SendMessage::NAME,
                    error: WireError::BadRequest("the recipient refuses this message".into()),
                })
            }
            // A relay that does not know the recipient (it lost its
            // database, or they have not re-registered yet) may know them
            // soon: the ciphertext stays in the outbox and is re-sent by
            // `maintain` / `flush_outbox` (`retalk sync`, `receive --follow`).
            Err(ClientError::Relay {
                error: WireError::NotFound(reason),
                ..
            }) => Err(ClientError::KeptForResend {
                id,
                reason: format!("the relay refused it: {reason}"),
            }),
            Err(e) if keep_on_failure => Err(ClientError::KeptForResend {
                id,
                reason: crate::client::error::sanitize(&e.to_string()),
            }),
            Err(e) => {
                self.store.tx(|t| t.outbox_delete(&id, None))?;
                Err(e)
            }
        }
    }

    /// Encrypts `envelope` for `to` on the session to send on, and saves
    /// the advanced session (and, with `outbox_id`, the ciphertext in the
    /// outbox) in one transaction.
    pub(crate) async fn encrypt_and_store(
        &self,
        account: &Account,
        to: &UserId,
        envelope: &Envelope,
        outbox_id: Option<&str>,
    ) -> Result<(MessageType, String), ClientError> {
        let mut session = self.session_for_send(account, to).await?;
        let (mtype, body) = encrypt(&mut session, envelope)?;
        self.store.tx(|t| {
            t.save_session(to.as_str(), &session)?;
            if let Some(id) = outbox_id {
                t.outbox_insert(&OutboxRow {
                    id: id.to_owned(),
                    peer: to.clone(),
                    mtype: u8::from(mtype),
                    body: body.clone(),
                })?;
            }
            Ok::<_, ClientError>(())
        })?;
        Ok((mtype, body))
    }

    /// Uploads again every unacknowledged message last sent at least
    /// `older_than` ago (zero: all of them, e.g. after moving to a new
    /// relay). Returns how many were uploaded. A message the relay refuses
    /// for good (say, a recipient it does not know yet) stays for a later
    /// try; an unreachable relay stops the flush with an error.
    pub async fn flush_outbox(&self, older_than: Duration) -> Result<usize, ClientError> {
        self.relay()?;
        let _lock = self.lock().await?;
        self.flush_locked(older_than).await
    }

    pub(crate) async fn flush_locked(&self, older_than: Duration) -> Result<usize, ClientError> {
        let cutoff = store::now() - older_than.as_secs_f64();
        let rows = self.store.tx(|t| t.outbox_due(cutoff))?;
        if rows.is_empty() {
            return Ok(0);
        }
        let account = self.signer();
        let mut sent = 0;
        for row in rows {
            let peer = row.peer;
            let Ok(mtype) = MessageType::try_from(row.mtype) else {
                self.store.tx(|t| t.outbox_delete(&row.id, None))?;
                continue;
            };
            let req = SendMessage {
                to: peer.clone(),
                mtype,
                body: row.body.clone(),
            };
            match self.call(account, &req).await {
                Ok(SendOutcome::Stored { .. }) => {
                    self.store.tx(|t| t.outbox_sent(&row.id))?;
                    sent += 1;
                }
                Ok(SendOutcome::Refused { hash, sig, .. }) => {
                    if self
                        .verify_refusal(account, &peer, &row.body, &hash, &sig)
                        .await
                    {
                        // The recipient signed that it will never read this
                        // ciphertext (it cannot decrypt it, or blocks us):
                        // stop re-sending, and start a fresh session next
                        // time rather than repeat the failure.
                        self.store.tx(|t| {
                            t.outbox_delete(&row.id, None)?;
                            t.delete_sessions(peer.as_str())
                        })?;
                    } else {
                        tracing::warn!(peer = %peer, "relay reported a refusal it cannot prove; keeping the message");
                    }
                }
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => {
                    tracing::warn!(peer = %peer, error = %e, "re-send refused; will retry later");
                }
            }
        }
        Ok(sent)
    }

    /// Whether `sig` is `peer`'s signed refusal of exactly this body. A
    /// relay cannot forge one, so it cannot make us give up a message.
    async fn verify_refusal(
        &self,
        account: &Account,
        peer: &UserId,
        body: &str,
        hash: &str,
        sig: &str,
    ) -> bool {
        if body_hash(body) != hash {
            return false;
        }
        let Ok(keys) = self.call(account, &GetKeys { peer: peer.clone() }).await else {
            return false;
        };
        if self
            .verify_keys(peer, &keys.identity_key, &keys.signing_key)
            .is_err()
        {
            return false;
        }
        let Ok(sk) = SigningKey::parse(&keys.signing_key, "signing_key") else {
            return false;
        };
        let Some(sig) = STANDARD_NO_PAD
            .decode(sig.trim_end_matches('='))
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
        else {
            return false;
        };
        let text = Nack::signed_text(peer.as_str(), hash);
        sk.verifying_key()
            .verify_strict(text.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig))
            .is_ok()
    }

    /// Messages sent and not yet acknowledged.
    pub fn outbox_len(&self) -> Result<usize, ClientError> {
        Ok(self.store.tx(|t| t.outbox_len())?)
    }

    /// Delivers the acknowledgements owed to senders: first every missing
    /// ciphertext is made and saved with the advanced sessions (one
    /// transaction), then they are uploaded a few at a time (Olm tolerates
    /// the small reordering), then the delivered ones are removed (one
    /// transaction). A transient failure leaves an acknowledgement owed; one
    /// the relay refuses for good is dropped (the sender will re-send and be
    /// acknowledged again). Returns how many were delivered.
    pub(crate) async fn send_acks_locked(&self) -> Result<usize, ClientError> {
        let rows = self.store.tx(|t| t.acks())?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut ready: Vec<(i64, UserId, MessageType, String)> = Vec::with_capacity(rows.len());
        self.store.tx(|t| {
            let mut sessions: HashMap<UserId, StoredSession> = HashMap::new();
            for row in &rows {
                let peer = row.peer.clone();
                if let Some((m, b)) = &row.wire {
                    match MessageType::try_from(*m) {
                        Ok(m) => ready.push((row.seq, peer, m, b.clone())),
                        Err(_) => t.ack_delete(row.seq)?,
                    }
                    continue;
                }
                let session = match sessions.entry(row.peer.clone()) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(v) => match t.sessions(row.peer.as_str())?.into_iter().next() {
                        Some(s) => v.insert(s),
                        // No session left with this peer (reset): nothing
                        // to acknowledge on.
                        None => {
                            t.ack_delete(row.seq)?;
                            continue;
                        }
                    },
                };
                let (m, b) = encrypt(
                    session,
                    &Envelope::Ack {
                        id: row.msg_id.clone(),
                    },
                )?;
                t.ack_set_wire(row.seq, u8::from(m), &b)?;
                ready.push((row.seq, peer, m, b));
            }
            for (peer, session) in &sessions {
                t.save_session(peer.as_str(), session)?;
            }
            Ok::<_, ClientError>(())
        })?;
        failpoint::hit("ack:encrypted");
        if ready.is_empty() {
            return Ok(0);
        }
        let account = self.signer();
        let results: Vec<(i64, Result<SendOutcome, ClientError>)> = futures_util::stream::iter(
            ready.into_iter().map(|(seq, to, mtype, body)| async move {
                let req = SendMessage { to, mtype, body };
                (seq, self.call(account, &req).await)
            }),
        )
        .buffer_unordered(ACK_UPLOADS)
        .collect()
        .await;
        let mut sent = 0;
        self.store.tx(|t| {
            for (seq, result) in &results {
                match result {
                    Ok(_) => {
                        t.ack_delete(*seq)?;
                        sent += 1;
                    }
                    Err(e) if e.is_transient() => {
                        tracing::warn!(error = %e, "acknowledgement postponed");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "acknowledgement refused; dropped");
                        t.ack_delete(*seq)?;
                    }
                }
            }
            Ok::<_, ClientError>(())
        })?;
        Ok(sent)
    }
}

/// Padded standard base64 decode of a relay body, `None` if malformed.
pub(crate) fn decode_body(body: &str) -> Option<Vec<u8>> {
    STANDARD.decode(body).ok()
}
