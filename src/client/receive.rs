//! The receive pipeline, built so that nothing the relay hands over is lost
//! whenever the process dies (the relay deletes mail as it hands it over).
//!
//! 1. **Fetch**: `read_messages`, then every message goes into the store's
//!    `inbox` table in one transaction before anything else happens.
//! 2. **Decrypt**, one inbox row at a time, each in one transaction: the
//!    advanced session (and account, when a one-time key was used), the
//!    body's hash in `processed`, the message in `delivered` (sealed), the
//!    acknowledgement owed in `pending_acks`, and the row's removal. A crash
//!    before the commit leaves the row in `inbox` with the old session
//!    state, so it decrypts again; after, it is never decrypted again.
//! 3. **Acknowledge**: owed acknowledgements are encrypted (ciphertext saved
//!    with the session) and uploaded; failures leave them owed for the next
//!    receive or `maintain`.
//! 4. **Return**: everything in `delivered` and `problems` is taken out and
//!    returned, in one transaction.
//!
//! Every step starts by finishing what an earlier, interrupted call left in
//! the store, so the next normal receive returns each message exactly once.
//! Re-sent copies of processed mail no longer decrypt (Olm refuses reused
//! message keys); they are recognised by their hash, acknowledged again and
//! dropped. Mail nothing can decrypt becomes a [`DeliveryProblem`] and the
//! rest of the mailbox goes on.

use std::time::{Duration, Instant};

use vodozemac::olm::{Account, OlmMessage};
use vodozemac::Curve25519PublicKey;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

use crate::proto::tools::{GetKeys, Mail, Nack, ReadMessages};
use crate::proto::{Envelope, UserId};
use crate::store::{InboxRow, StoredSession};

use super::failpoint;
use super::groups::{on_leave, on_post, PostContext, PostOutcome};
use super::invites::{on_request, RequestOutcome};
use super::outbox::{body_hash, decode_body};
use super::sessions::session_config;
use super::transport::REQUEST_TIMEOUT;
use super::{ClientError, DeliveryProblem, GroupRef, Inbox, Message, User};

/// What decrypting one inbox row produced.
enum Outcome {
    /// Decrypted on `session`; `account_changed` when a one-time key was
    /// used up making it.
    Plain {
        session: Box<StoredSession>,
        plaintext: zeroize::Zeroizing<Vec<u8>>,
        account_changed: bool,
    },
    /// Not readable, for this reason. `refuse`: the ciphertext can never be
    /// decrypted here (no session, or a broken one), as opposed to problems
    /// a relay can cause (lying about keys, mangling bytes).
    Problem { reason: String, refuse: bool },
}

fn problem(reason: impl Into<String>) -> Result<Outcome, ClientError> {
    Ok(Outcome::Problem {
        reason: reason.into(),
        refuse: false,
    })
}

fn undecryptable(reason: impl Into<String>) -> Result<Outcome, ClientError> {
    Ok(Outcome::Problem {
        reason: reason.into(),
        refuse: true,
    })
}

/// Options of [`User::receive_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiveOptions {
    /// Hold an empty read open up to this long (relays that support it).
    pub wait: Option<Duration>,
    /// Only this sender's mail (0.3.x relays and ours); the rest stays on
    /// the relay for a later receive.
    pub from: Option<UserId>,
    /// Refuse mail from senders that are not saved contacts, unread.
    pub peers_only: bool,
    /// Keep each returned message until [`User::shown`] confirms it was
    /// written out, so a reader that dies or whose output closes loses
    /// nothing: unconfirmed messages are returned again, first. A held
    /// message is reserved for the `User` instance that got it: other
    /// instances (another process on the same identity) get it only once
    /// that one is gone (dropped, or its process ended).
    pub hold: bool,
}

impl User {
    /// Fetches, decrypts and acknowledges pending mail; returns each new
    /// chat message once, in arrival order. Mail that cannot be read is
    /// reported on stderr and skipped; use
    /// [`receive_inbox`](Self::receive_inbox) to get those reports as values.
    pub async fn receive(&self) -> Result<Vec<Message>, ClientError> {
        let inbox = self.receive_inbox(None).await?;
        for p in &inbox.problems {
            tracing::warn!(from = %p.from, reason = %p.reason, "could not read a message");
        }
        Ok(inbox.messages)
    }

    /// Like [`receive`](Self::receive), returning undecryptable mail as
    /// [`DeliveryProblem`]s. With `wait`, when the mailbox is empty and the
    /// relay supports it (`GET /info` advertises `max_wait`), the relay holds
    /// the read open until mail arrives or the wait (capped at `max_wait`)
    /// ends; other relays return at once. The store lock is not held during
    /// the wait, so other commands on this identity are not blocked by it.
    pub async fn receive_inbox(&self, wait: Option<Duration>) -> Result<Inbox, ClientError> {
        self.receive_with(&ReceiveOptions {
            wait,
            ..ReceiveOptions::default()
        })
        .await
    }

    /// A message returned by [`receive_with`](Self::receive_with) with
    /// `hold` was shown (written out): forget it. Until then it is returned
    /// again by every receive.
    pub fn shown(&self, m: &Message) -> Result<(), ClientError> {
        Ok(self
            .store
            .tx(|t| t.delivered_delete(m.from.as_str(), &m.id))?)
    }

    /// The receive of [`receive_inbox`](Self::receive_inbox), with options:
    /// only one sender's mail (`from`), strangers refused (`peers_only`),
    /// and messages held until [`shown`](Self::shown) (`hold`).
    pub async fn receive_with(&self, opts: &ReceiveOptions) -> Result<Inbox, ClientError> {
        let wait = opts.wait;
        self.relay()?;
        let wait_secs = match wait.map(|d| d.as_secs()) {
            Some(s) if s > 0 => self.relay_max_wait().await?.map(|max| s.min(max)),
            _ => None,
        };
        {
            let _lock = self.lock().await?;
            let fetched = self.fetch(self.signer(), opts, None, false).await;
            let inbox = self.finish_locked(fetched, opts).await?;
            if !inbox.is_empty() || wait_secs.is_none() {
                return Ok(inbox);
            }
        }
        // The long wait only peeks: the relay deletes mail when it hands it
        // over, so a process stopped (SIGINT, kill) while a destructive read
        // is held open could lose the answer in flight. Once the peek sees
        // mail, the short destructive read below fetches it under the lock.
        //
        // Mail that shows nothing (an acknowledgement, a re-sent copy of a
        // message already decrypted, a control message) ends a wait early;
        // the wait then goes on for the time left, so a caller sees a
        // message the moment it arrives rather than after its own pause.
        let Some(total) = wait_secs else {
            return Ok(Inbox::default());
        };
        let deadline = Instant::now() + Duration::from_secs(total);
        let account = self.signer();
        let mut secs = total;
        loop {
            let peeked = self.fetch(account, opts, Some(secs), true).await?;
            if !peeked.is_empty() {
                failpoint::hit("receive:peeked");
            }
            let _lock = self.lock().await?;
            let fetched = if peeked.is_empty() {
                Ok(Vec::new())
            } else {
                self.fetch(account, opts, None, false).await
            };
            let inbox = self.finish_locked(fetched, opts).await?;
            let left = deadline.saturating_duration_since(Instant::now()).as_secs();
            if !inbox.is_empty() || peeked.is_empty() || left == 0 {
                return Ok(inbox);
            }
            secs = left;
        }
    }

    /// Reads the mailbox (never sending options the relay does not know:
    /// `wait`, and the `peek` that goes with it, only when the relay
    /// advertised waiting).
    async fn fetch(
        &self,
        account: &Account,
        opts: &ReceiveOptions,
        wait: Option<u64>,
        peek: bool,
    ) -> Result<Vec<Mail>, ClientError> {
        let req = ReadMessages {
            peer: opts.from.clone(),
            peek,
            wait,
        };
        let timeout = REQUEST_TIMEOUT + Duration::from_secs(wait.unwrap_or(0));
        self.call_with_timeout(account, &req, timeout).await
    }

    /// Steps 1 to 4 with the lock held. A fetch or network failure does not
    /// hide what earlier calls left ready: the error is returned only when
    /// there is nothing else to return.
    async fn finish_locked(
        &self,
        fetched: Result<Vec<Mail>, ClientError>,
        opts: &ReceiveOptions,
    ) -> Result<Inbox, ClientError> {
        let relay = self.relay()?.to_owned();
        let mut failure = None;
        match fetched {
            Ok(mail) if !mail.is_empty() => {
                self.store
                    .tx(|t| mail.iter().try_for_each(|m| t.inbox_insert(&relay, m)))?;
                failpoint::hit("receive:fetched");
            }
            Ok(_) => {}
            Err(e) => failure = Some(e),
        }
        if let Err(e) = self.process_inbox(opts.peers_only).await {
            if !e.is_transient() {
                return Err(e);
            }
            failure.get_or_insert(e);
        }
        if let Err(e) = self.send_acks_locked().await {
            tracing::warn!(error = %e, "acknowledgements postponed");
        }
        failpoint::hit("receive:acked");
        let inbox = self.take_outcomes(opts)?;
        match failure {
            Some(e) if inbox.is_empty() => Err(e),
            _ => Ok(inbox),
        }
    }

    /// Step 2 for every stored inbox row, in arrival order. Stops at the
    /// first transient failure (the remaining rows wait for the next call).
    async fn process_inbox(&self, peers_only: bool) -> Result<(), ClientError> {
        let rows = self.store.tx(|t| t.inbox())?;
        if rows.is_empty() {
            return Ok(());
        }
        // Loaded (fresh, under the lock) only if a row starts a session.
        let mut account = None;
        for row in rows {
            self.process_row(&mut account, &row, peers_only).await?;
        }
        Ok(())
    }

    async fn process_row(
        &self,
        account: &mut Option<Account>,
        row: &InboxRow,
        peers_only: bool,
    ) -> Result<(), ClientError> {
        let Ok(sender) = UserId::parse(&row.sender, "from") else {
            tracing::warn!("dropping mail whose sender is not a user id");
            self.store.tx(|t| t.inbox_delete(row.seq))?;
            return Ok(());
        };
        // Blocked senders (and, with peers_only, strangers) are refused
        // before any decryption, so they cannot make us use up a one-time
        // key; the relay is told, so their re-sends are refused there.
        let refused = self.store.tx(|t| {
            Ok::<_, ClientError>(
                t.is_blocked(sender.as_str())?
                    || (peers_only && t.peers_for_id(sender.as_str())?.is_empty()),
            )
        })?;
        if refused {
            self.store.tx(|t| t.inbox_delete(row.seq))?;
            self.refuse(&body_hash(&row.body)).await;
            return Ok(());
        }
        if !matches!(row.mtype, 0 | 1) {
            // Not an Olm message (a foreign relay's own kind): ignore it.
            self.store.tx(|t| t.inbox_delete(row.seq))?;
            return Ok(());
        }
        let hash = body_hash(&row.body);
        if let Some((msg_id, peer)) = self.store.tx(|t| t.processed(&hash))? {
            // A copy of something already decrypted: our acknowledgement
            // may have been lost, so acknowledge again, and drop it.
            self.store.tx(|t| {
                // ("" = sender unknown: a row imported from a Python 0.0.1
                // store, which records no sender; it re-acks whoever sends
                // the copy, as the reference does)
                if (peer == sender.as_str() || peer.is_empty()) && !msg_id.is_empty() {
                    t.ack_insert(&sender, &msg_id)?;
                }
                t.inbox_delete(row.seq)
            })?;
            return Ok(());
        }
        let outcome = self.decrypt(account, &sender, row).await?;
        let (session, plaintext, account_changed) = match outcome {
            Outcome::Problem { reason, refuse } => {
                self.store.tx(|t| {
                    t.problem_insert(&sender, &reason)?;
                    t.inbox_delete(row.seq)
                })?;
                if refuse {
                    self.refuse(&hash).await;
                }
                return Ok(());
            }
            Outcome::Plain {
                session,
                plaintext,
                account_changed,
            } => (session, plaintext, account_changed),
        };
        let envelope = Envelope::parse(&plaintext);
        let from = sender.as_str();
        let me = self.user_id();
        let policy = self.adopt_policy();
        // names of the owner-wide list: an invite's redeemer never gets one
        let global_names: Vec<(String, String)> = match &self.global {
            Some(g) if matches!(envelope, Ok(Envelope::ContactRequest { .. })) => g
                .list()?
                .into_iter()
                .map(|c| (c.name, c.id.to_string()))
                .collect(),
            _ => Vec::new(),
        };
        let cap = self.store.read(|t| t.meta("group_cap"))?;
        let cap = cap
            .and_then(|c| c.parse().ok())
            .unwrap_or(super::groups::DEFAULT_GROUP_CAP);
        let refuse_after = self.store.tx(|t| {
            if let (true, Some(account)) = (account_changed, account.as_ref()) {
                t.save_account(account)?;
            }
            t.save_session(from, &session)?;
            let mut refuse_after = false;
            match &envelope {
                Ok(Envelope::Msg { id, text, name }) => {
                    let seen = t.processed_id(from, id)?;
                    t.processed_insert(&hash, id, from)?;
                    if !seen {
                        t.delivered_insert(&sender, id, name, text)?;
                    }
                    t.ack_insert(&sender, id)?;
                }
                Ok(Envelope::GroupMsg {
                    id,
                    text,
                    name,
                    group,
                    ..
                }) => {
                    if t.processed_id(from, id)? {
                        t.processed_insert(&hash, id, from)?;
                        t.ack_insert(&sender, id)?;
                    } else {
                        let cx = PostContext {
                            me: &me,
                            sender: &sender,
                            sender_saved: !t.peers_for_id(from)?.is_empty(),
                            policy,
                            cap,
                        };
                        match on_post(t, &cx, group)? {
                            PostOutcome::Refuse => {
                                // a room we left, or a removed member: the
                                // signed nack stops their re-sends
                                t.processed_insert(&hash, "", from)?;
                                refuse_after = true;
                            }
                            PostOutcome::Untagged => {
                                t.processed_insert(&hash, id, from)?;
                                t.delivered_insert(&sender, id, name, text)?;
                                t.ack_insert(&sender, id)?;
                            }
                            PostOutcome::Deliver { label, notices } => {
                                for (i, n) in notices.iter().enumerate() {
                                    t.delivered_insert_value(
                                        &sender,
                                        &format!("{id}.{i}"),
                                        &serde_json::json!({"name": name, "notice": n}),
                                    )?;
                                }
                                t.processed_insert(&hash, id, from)?;
                                t.delivered_insert_value(
                                    &sender,
                                    id,
                                    &serde_json::json!({"name": name, "text": text,
                                        "group": {"id": group.id, "name": label}}),
                                )?;
                                t.ack_insert(&sender, id)?;
                            }
                        }
                    }
                }
                Ok(Envelope::GroupLeave { id, group_id, name }) => {
                    let seen = t.processed_id(from, id)?;
                    t.processed_insert(&hash, id, from)?;
                    if !seen {
                        let label = on_leave(t, &sender, group_id)?;
                        t.delivered_insert_value(
                            &sender,
                            id,
                            &serde_json::json!({"name": name.clone().unwrap_or_default(),
                                "notice": {"kind": "group_leave", "group_id": group_id,
                                    "group": label}}),
                        )?;
                    }
                    t.ack_insert(&sender, id)?;
                }
                Ok(Envelope::ContactRequest { id, code, card }) => {
                    let name = card.get("name").and_then(|n| n.as_str()).unwrap_or("");
                    match on_request(t, &sender, code, card, &global_names)? {
                        RequestOutcome::Accepted { name: saved, card } => {
                            t.processed_insert(&hash, id, from)?;
                            t.delivered_insert_value(
                                &sender,
                                id,
                                &serde_json::json!({"name": name,
                                    "notice": {"kind": "contact_accepted", "code": code,
                                        "name": saved, "card": card}}),
                            )?;
                            t.ack_insert(&sender, id)?;
                        }
                        RequestOutcome::Duplicate => {
                            t.processed_insert(&hash, id, from)?;
                            t.ack_insert(&sender, id)?;
                        }
                        RequestOutcome::Rejected(reason) => {
                            t.processed_insert(&hash, "", from)?;
                            t.delivered_insert_value(
                                &sender,
                                id,
                                &serde_json::json!({"name": name,
                                    "notice": {"kind": "contact_request_rejected",
                                        "reason": reason}}),
                            )?;
                            refuse_after = true;
                        }
                    }
                }
                Ok(Envelope::Ack { id }) => {
                    t.processed_insert(&hash, "", from)?;
                    t.outbox_delete(id, Some(from))?;
                }
                // A shared contact card (0.3.x `share`): staged for
                // `import --inbox` when it is well formed (keys, if any,
                // must hash to its id), and shown as 0.3.x's record.
                Ok(Envelope::Contact { id, name, card }) => {
                    t.processed_insert(&hash, id, from)?;
                    if let Some(staged) = super::contacts::stage_card(card, &sender, name, id) {
                        t.contact_inbox_put(&staged)?;
                    }
                    t.delivered_insert_value(
                        &sender,
                        id,
                        &serde_json::json!({"name": name,
                            "notice": {"kind": "contact", "card": card}}),
                    )?;
                    t.ack_insert(&sender, id)?;
                }
                // Kinds this client does not know are acknowledged, so their
                // sender stops re-sending, and otherwise ignored.
                Ok(Envelope::Other { id, .. }) => {
                    let id = id.as_deref().unwrap_or("");
                    t.processed_insert(&hash, id, from)?;
                    if !id.is_empty() {
                        t.ack_insert(&sender, id)?;
                    }
                }
                Err(_) => {
                    t.processed_insert(&hash, "", from)?;
                    t.problem_insert(&sender, "decrypted, but it is not a retalk message")?;
                }
            }
            t.inbox_delete(row.seq)?;
            Ok::<_, ClientError>(refuse_after)
        })?;
        if refuse_after {
            self.refuse(&hash).await;
        }
        failpoint::hit("receive:decrypted");
        Ok(())
    }

    /// Decrypts one row: a pre-key message on the session it names, or on a
    /// new inbound session once the sender's keys are checked against its
    /// id and pin; a normal message on each of the sender's sessions in
    /// turn. Sessions are fresh copies from the store, so a failed attempt
    /// changes nothing.
    async fn decrypt(
        &self,
        account: &mut Option<Account>,
        sender: &UserId,
        row: &InboxRow,
    ) -> Result<Outcome, ClientError> {
        let Some(bytes) = decode_body(&row.body) else {
            return problem("the body is not base64");
        };
        let Ok(message) = OlmMessage::from_parts(row.mtype as usize, &bytes) else {
            return problem("not a valid Olm message");
        };
        let sessions = self.store.tx(|t| t.sessions(sender.as_str()))?;
        match &message {
            OlmMessage::PreKey(pre_key) => {
                let id = pre_key.session_id();
                if let Some(mut s) = sessions.into_iter().find(|s| s.session_id == id) {
                    return match s.session.decrypt(&message) {
                        Ok(p) => Ok(Outcome::Plain {
                            session: Box::new(s),
                            plaintext: zeroize::Zeroizing::new(p),
                            account_changed: false,
                        }),
                        Err(_) => undecryptable("it does not decrypt on the session it names"),
                    };
                }
                let keys = match self
                    .call(
                        self.signer(),
                        &GetKeys {
                            peer: sender.clone(),
                        },
                    )
                    .await
                {
                    Ok(k) => k,
                    Err(e) if e.is_transient() => return Err(e),
                    Err(e) => return problem(format!("cannot check the sender's keys: {e}")),
                };
                if let Err(e) = self.verify_keys(sender, &keys.identity_key, &keys.signing_key) {
                    return problem(e.to_string());
                }
                let Ok(ik) = Curve25519PublicKey::from_base64(&keys.identity_key) else {
                    return problem("the relay served an invalid identity key");
                };
                // Creating the session consumes one of our one-time keys:
                // the account must be the stored one, not the signer.
                let account = match account {
                    Some(a) => a,
                    None => account.insert(self.account()?),
                };
                match account.create_inbound_session(session_config(), ik, pre_key) {
                    Ok(r) => Ok(Outcome::Plain {
                        session: Box::new(StoredSession {
                            session_id: r.session.session_id(),
                            peer_key: keys.identity_key,
                            session: r.session,
                        }),
                        plaintext: zeroize::Zeroizing::new(r.plaintext),
                        account_changed: true,
                    }),
                    Err(e) => undecryptable(format!("cannot start a session from it ({e})")),
                }
            }
            OlmMessage::Normal(_) => {
                if sessions.is_empty() {
                    return undecryptable("no session with this sender (it may have been reset)");
                }
                for mut s in sessions {
                    if let Ok(p) = s.session.decrypt(&message) {
                        return Ok(Outcome::Plain {
                            session: Box::new(s),
                            plaintext: zeroize::Zeroizing::new(p),
                            account_changed: false,
                        });
                    }
                }
                undecryptable("none of the sessions with this sender decrypts it")
            }
        }
    }

    /// Decrypts `row` to look at it only: nothing is saved (the session
    /// and any account change are dropped). `None` when it does not decrypt.
    pub(crate) async fn try_decrypt(
        &self,
        account: &mut Option<Account>,
        sender: &UserId,
        row: &InboxRow,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, ClientError> {
        match self.decrypt(account, sender, row).await {
            Ok(Outcome::Plain { plaintext, .. }) => Ok(Some(plaintext)),
            Ok(Outcome::Problem { .. }) => Ok(None),
            Err(e) if e.is_transient() => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// Takes `sender`'s mail from the relay into the store's inbox (the
    /// lock is held).
    pub(crate) async fn fetch_from_locked(&self, sender: &UserId) -> Result<(), ClientError> {
        let opts = ReceiveOptions {
            from: Some(sender.clone()),
            ..ReceiveOptions::default()
        };
        let mail = self.fetch(self.signer(), &opts, None, false).await?;
        let relay = self.relay()?.to_owned();
        self.store
            .tx(|t| mail.iter().try_for_each(|m| t.inbox_insert(&relay, m)))?;
        Ok(())
    }

    /// Steps 2 and 3 for what the inbox holds (the lock is held); the
    /// outcomes stay in the store.
    pub(crate) async fn process_stored_locked(&self) -> Result<(), ClientError> {
        self.process_inbox(false).await?;
        if let Err(e) = self.send_acks_locked().await {
            tracing::warn!(error = %e, "acknowledgements postponed");
        }
        Ok(())
    }

    /// Tells the relay, with a signature only we can make, that we refuse
    /// this ciphertext for good (0.3.x `nack`). The relay then refuses its
    /// re-sends and hands our signature to the sender, whose client drops
    /// the message and starts a fresh session: a pair whose sessions broke
    /// (a store restored from a backup, say) heals by itself. Best effort:
    /// relays without `nack` refuse it, and the next copy tries again.
    async fn refuse(&self, hash: &str) {
        let account = self.signer();
        let text = Nack::signed_text(self.user_id().as_str(), hash);
        let req = Nack {
            hash: hash.to_owned(),
            sig: STANDARD_NO_PAD.encode(account.sign(text.as_bytes()).to_bytes()),
        };
        if let Err(e) = self.call(account, &req).await {
            tracing::debug!(error = %e, "could not record a refusal");
        }
    }

    /// Step 4: takes out everything ready to return.
    fn take_outcomes(&self, opts: &ReceiveOptions) -> Result<Inbox, ClientError> {
        if opts.hold {
            self.hold_claim_lock().map_err(|e| {
                ClientError::Store(crate::store::StoreError::Io(format!(
                    "cannot take the claim lock in {}: {e}",
                    self.dir().join("claims").display()
                )))
            })?;
        }
        self.store.tx(|t| {
            let (delivered, problems) = if opts.hold || opts.from.is_some() {
                let (mut d, p) = t.peek_outcomes(opts.from.as_ref().map(UserId::as_str))?;
                if opts.hold {
                    // Two readers holding at once (an MCP server beside a
                    // `receive --follow`) must not both return a message:
                    // one held by another live instance is left alone; one
                    // whose holder is gone is returned again (see `claims`).
                    let mut mine = Vec::with_capacity(d.len());
                    for m in d {
                        let free = match t.claim(m.peer.as_str(), &m.msg_id)? {
                            Some((who, _)) => who == self.claimant || !self.claimant_alive(&who),
                            None => true,
                        };
                        if free {
                            t.set_claim(m.peer.as_str(), &m.msg_id, &self.claimant)?;
                            mine.push(m);
                        }
                    }
                    d = mine;
                } else {
                    for m in &d {
                        t.delivered_delete(m.peer.as_str(), &m.msg_id)?;
                    }
                }
                (d, p)
            } else {
                t.take_outcomes()?
            };
            let mut inbox = Inbox::default();
            for d in delivered {
                let from = d.peer.clone();
                let saved = t.peers_for_id(from.as_str())?.into_iter().next();
                let name = match saved {
                    Some(p) => p.name,
                    None if d.name.is_empty() => String::new(),
                    None => format!(
                        "~{}",
                        d.name
                            .chars()
                            .map(|c| if c.is_control() { ' ' } else { c })
                            .collect::<String>()
                    ),
                };
                inbox.messages.push(Message {
                    id: d.msg_id,
                    from,
                    name,
                    text: d.text,
                    group: d.group.map(|(id, name)| GroupRef { id, name }),
                    notice: d.notice,
                });
            }
            for (from, reason) in problems {
                inbox.problems.push(DeliveryProblem { from, reason });
            }
            Ok(inbox)
        })
    }
}
