//! `user.invites()`: invite codes, wire-compatible with retalk 0.3.x.
//!
//! The inviter mints a code and gives it, with their user id, to someone
//! they have not met. The redeemer saves the inviter (keys verified from
//! the relay) and sends them one encrypted `contact_request` carrying the
//! code and the redeemer's card. The inviter's client checks the card
//! against the sender and the code against its list, then saves the
//! redeemer as a verified contact (`contact_accepted`) or refuses the
//! request with a signed nack (`contact_request_rejected`: `unknown-code`,
//! `revoked`, `expired`, `consumed` or `card-mismatch`).
//!
//! Better than 0.3.0: codes are stored only as SHA-256 (plus a six-letter
//! hint) and compared in constant time (`subtle`); a redeemer's
//! self-chosen name never takes a name that already stands for another
//! contact (it gets `-2`, `-3`...); and [`Invites::watch`] never fetches a
//! saved contact's mail, and leaves any other mail it fetches in the store
//! for the next receive instead of dropping it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::proto::tools::ReadMessages;
use crate::proto::{fingerprint, new_id, Envelope, UserId};
use crate::store::{self, InviteRow, PeerRow, Tx};

use super::{ClientError, User};

/// How long a code lives unless told otherwise (single-use codes).
pub const DEFAULT_EXPIRY_DAYS: f64 = 7.0;

/// A freshly minted code (the only time the code itself is shown).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewInvite {
    /// The code.
    pub code: String,
    /// `"single"` or `"permanent"`.
    pub kind: String,
    /// When it expires (seconds since the epoch); `None`: never.
    pub expires: Option<f64>,
    /// The name the redeemer will be saved under.
    pub peer: Option<String>,
}

/// A minted code as listed (the code itself is not kept: its hint is).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invite {
    /// The code's first characters (`revoke` takes them).
    pub code: String,
    /// `"single"` or `"permanent"`.
    pub kind: String,
    /// The name the redeemer will be saved under.
    pub peer: Option<String>,
    /// When minted.
    pub created: f64,
    /// When it expires; `None`: never.
    pub expires: Option<f64>,
    /// Redemptions.
    pub uses: i64,
    /// Who redeemed it.
    pub used_by: Vec<UserId>,
    /// Revoked.
    pub revoked: bool,
    /// Redeemable now.
    pub active: bool,
}

/// How long a hint is.
const HINT_LEN: usize = 6;

fn code_hash(code: &str) -> [u8; 32] {
    Sha256::digest(code.as_bytes()).into()
}

fn to_invite(r: InviteRow, now: f64) -> Invite {
    let active =
        !r.revoked && r.expires.is_none_or(|e| now <= e) && (r.kind == "permanent" || r.uses == 0);
    Invite {
        code: format!("{}…", r.hint),
        kind: r.kind,
        peer: r.peer,
        created: r.created,
        expires: r.expires,
        uses: r.uses,
        used_by: r.used_by,
        revoked: r.revoked,
        active,
    }
}

/// The row whose hash matches `code`'s, compared in constant time against
/// every row (there are few).
fn find(t: &Tx<'_>, code: &str) -> Result<Option<InviteRow>, ClientError> {
    let want = code_hash(code);
    let mut found = None;
    for row in t.invites()? {
        let Some(h) = hex::decode(&row.hash)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        else {
            continue;
        };
        if bool::from(h.ct_eq(&want)) {
            found = Some(row);
        }
    }
    Ok(found)
}

/// The invite codes of one identity; see [`User::invites`].
pub struct Invites<'u> {
    user: &'u User,
}

impl User {
    /// This identity's invite codes.
    pub fn invites(&self) -> Invites<'_> {
        Invites { user: self }
    }
}

/// What a contact request came to (inside the receive transaction).
pub(crate) enum RequestOutcome {
    /// Saved as a contact under `name`.
    Accepted {
        name: String,
        card: serde_json::Value,
    },
    /// The same redeemer again (a re-sent request): acknowledged quietly.
    Duplicate,
    /// Refused, for this reason.
    Rejected(&'static str),
}

/// A contact name for the redeemer that stands for no other contact, here
/// or in the owner-wide list (`global`: its names and ids).
fn free_contact_name(
    t: &Tx<'_>,
    want: &str,
    id: &str,
    global: &[(String, String)],
) -> Result<String, ClientError> {
    let clean: String = super::error::sanitize(want)
        .trim()
        .trim_start_matches('~')
        .chars()
        .take(64)
        .collect();
    let base = if clean.is_empty() || UserId::parse(&clean.to_ascii_lowercase(), "n").is_ok() {
        format!("peer-{}", &id[..8])
    } else {
        clean
    };
    let mut name = base.clone();
    let mut n = 1;
    let taken = |name: &str| -> Result<bool, ClientError> {
        Ok(t.peer_by_name(name)?.is_some_and(|p| p.id != id)
            || global.iter().any(|(n, i)| n == name && i != id))
    };
    while taken(&name)? {
        n += 1;
        name = format!("{base}-{n}");
    }
    Ok(name)
}

/// The invite rules for one `contact_request` from `sender`.
pub(crate) fn on_request(
    t: &Tx<'_>,
    sender: &UserId,
    code: &str,
    card: &serde_json::Value,
    global: &[(String, String)],
) -> Result<RequestOutcome, ClientError> {
    let field = |k: &str| card.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let (ik, sk) = (field("identity_key"), field("signing_key"));
    if ik.is_empty()
        || fingerprint(ik, sk) != field("fingerprint")
        || *sender != field("fingerprint")
    {
        return Ok(RequestOutcome::Rejected("card-mismatch"));
    }
    let Some(row) = find(t, code)? else {
        return Ok(RequestOutcome::Rejected("unknown-code"));
    };
    if row.used_by.iter().any(|u| u == sender) {
        return Ok(RequestOutcome::Duplicate);
    }
    let now = store::now();
    if row.revoked {
        return Ok(RequestOutcome::Rejected("revoked"));
    }
    if row.expires.is_some_and(|e| now > e) {
        return Ok(RequestOutcome::Rejected("expired"));
    }
    if row.kind != "permanent" && row.uses > 0 {
        return Ok(RequestOutcome::Rejected("consumed"));
    }
    let mut used = row.used_by.clone();
    used.push(sender.clone());
    t.invite_used(&row.hash, &used)?;
    // An existing contact keeps its name; otherwise the code's name, else
    // the redeemer's own, never one that already means someone else.
    let name = match t.peers_for_id(sender.as_str())?.into_iter().next() {
        Some(p) => p.name,
        None => {
            let want = row.peer.clone().unwrap_or_else(|| field("name").to_owned());
            free_contact_name(t, &want, sender.as_str(), global)?
        }
    };
    t.peer_upsert(&PeerRow {
        name: name.clone(),
        id: sender.clone(),
        pin: Some(ik.to_owned()),
        signing_key: Some(sk.to_owned()),
    })?;
    let card = serde_json::json!({
        "name": name, "fingerprint": sender, "identity_key": ik, "signing_key": sk,
        "verified": true,
    });
    Ok(RequestOutcome::Accepted { name, card })
}

impl Invites<'_> {
    /// Mints a code: single-use and expiring in 7 days by default;
    /// `permanent` codes are multi-use and never expire; `expires_days`
    /// overrides the expiry (0 or less: never). With `peer`, the redeemer
    /// is saved under that name (if it is free).
    pub fn create(
        &self,
        peer: Option<&str>,
        permanent: bool,
        expires_days: Option<f64>,
    ) -> Result<NewInvite, ClientError> {
        if let Some(p) = peer {
            if p.trim().is_empty() || p.chars().any(char::is_control) {
                return Err(ClientError::InvalidArgument(
                    "a contact name must be non-empty and printable".into(),
                ));
            }
        }
        let now = store::now();
        let expires = match expires_days {
            Some(d) if !d.is_finite() => {
                return Err(ClientError::InvalidArgument(
                    "--expires must be a number of days".into(),
                ))
            }
            Some(d) if d <= 0.0 => None,
            Some(d) => Some(now + d * 86_400.0),
            None if permanent => None,
            None => Some(now + DEFAULT_EXPIRY_DAYS * 86_400.0),
        };
        // 128 random bits, base64url; never starting with '-' (a command
        // line would read it as an option).
        let code = loop {
            let b: [u8; 16] = rand::random();
            let c = URL_SAFE_NO_PAD.encode(b);
            if !c.starts_with('-') {
                break c;
            }
        };
        let kind = if permanent { "permanent" } else { "single" };
        let row = InviteRow {
            hash: hex::encode(code_hash(&code)),
            hint: code.chars().take(HINT_LEN).collect(),
            kind: kind.into(),
            peer: peer.map(str::to_owned),
            created: now,
            expires,
            uses: 0,
            used_by: vec![],
            revoked: false,
        };
        self.user.store.tx(|t| t.invite_insert(&row))?;
        Ok(NewInvite {
            code,
            kind: kind.into(),
            expires,
            peer: peer.map(str::to_owned),
        })
    }

    /// Every code, oldest first.
    pub fn list(&self) -> Result<Vec<Invite>, ClientError> {
        let now = store::now();
        Ok(self
            .user
            .store
            .read(|t| t.invites())?
            .into_iter()
            .map(|r| to_invite(r, now))
            .collect())
    }

    /// Revokes a code, given whole, or by its hint when that names exactly
    /// one code. Returns whether one was revoked.
    pub fn revoke(&self, code: &str) -> Result<bool, ClientError> {
        let code = code.trim().trim_end_matches('…');
        self.user.store.tx(|t| {
            if let Some(row) = find(t, code)? {
                t.invite_revoke(&row.hash)?;
                return Ok(true);
            }
            if code.chars().count() == HINT_LEN {
                let rows: Vec<_> = t
                    .invites()?
                    .into_iter()
                    .filter(|r| r.hint == code)
                    .collect();
                if let [one] = rows.as_slice() {
                    t.invite_revoke(&one.hash)?;
                    return Ok(true);
                }
                if rows.len() > 1 {
                    return Err(ClientError::InvalidArgument(format!(
                        "{} codes start with {code}: give the whole code",
                        rows.len()
                    )));
                }
            }
            Ok(false)
        })
    }

    /// Redeems `code` from `inviter`: saves the inviter as a verified
    /// contact (keys from the relay, checked against the id; under `name`,
    /// else their id's first characters) and sends them the encrypted
    /// `contact_request` with this identity's card. Returns the message id.
    /// Acceptance is not observable from here (by design: no code oracle).
    pub async fn request(
        &self,
        inviter: &UserId,
        code: &str,
        name: Option<&str>,
    ) -> Result<String, ClientError> {
        if *inviter == self.user.user_id() {
            return Err(ClientError::SelfSend(inviter.clone()));
        }
        if code.trim().is_empty() {
            return Err(ClientError::InvalidArgument("the code is empty".into()));
        }
        self.user.relay()?;
        let existing = self.user.contacts().get(inviter.as_str())?;
        if existing.is_none() {
            let want = name
                .map(str::to_owned)
                .unwrap_or_else(|| format!("peer-{}", &inviter.as_str()[..8]));
            let taken = self
                .user
                .contacts()
                .get(&want)?
                .is_some_and(|c| c.id != *inviter);
            if taken {
                return Err(ClientError::NameTaken {
                    name: want.clone(),
                    id: self.user.resolve_peer(&want)?,
                });
            }
            self.user
                .contacts()
                .add(&want, inviter, Default::default())?;
        }
        self.user.contacts().verify_from_relay(inviter).await?;
        let card = serde_json::json!({
            "name": self.user.name(), "fingerprint": self.user.user_id().as_str(),
            "identity_key": self.user.identity_key(), "signing_key": self.user.signing_key(),
            "verified": true,
        });
        let env = Envelope::ContactRequest {
            id: new_id(),
            code: code.to_owned(),
            card,
        };
        let _lock = self.user.lock().await?;
        self.user.send_envelope_locked(inviter, &env, false).await
    }

    /// One look for contact requests: peeks at the mailbox (nothing is
    /// taken), fetches only the senders who are not saved contacts and
    /// whose first message decrypts to a `contact_request`, and processes
    /// them. Returns the `contact_accepted` / `contact_request_rejected`
    /// records (as JSON objects with `from`). Saved contacts' mail is never
    /// fetched; anything else fetched with a request (a stranger's chat)
    /// stays in the store for the next receive.
    pub async fn watch(&self) -> Result<Vec<serde_json::Value>, ClientError> {
        let user = self.user;
        user.relay()?;
        let _lock = user.lock().await?;
        let account = user.signer();
        let peeked = user
            .call(
                account,
                &ReadMessages {
                    peer: None,
                    peek: true,
                    wait: None,
                },
            )
            .await?;
        let mut senders: Vec<UserId> = Vec::new();
        let mut fresh = None;
        for m in &peeked {
            let Ok(sender) = UserId::parse(&m.from, "from") else {
                continue;
            };
            if senders.contains(&sender) || m.mtype != 0 {
                continue;
            }
            let skip = user.store.read(|t| {
                Ok::<_, ClientError>(
                    !t.peers_for_id(sender.as_str())?.is_empty()
                        || t.is_blocked(sender.as_str())?,
                )
            })?;
            if skip {
                continue;
            }
            let row = store::InboxRow {
                seq: 0,
                sender: m.from.clone(),
                mtype: m.mtype,
                body: m.body.clone(),
            };
            // classify only: the session and account are thrown away
            if let Some(plain) = user.try_decrypt(&mut fresh, &sender, &row).await? {
                if matches!(Envelope::parse(&plain), Ok(Envelope::ContactRequest { .. })) {
                    senders.push(sender);
                }
            }
        }
        drop(fresh);
        for sender in &senders {
            user.fetch_from_locked(sender).await?;
        }
        user.process_stored_locked().await?;
        Ok(user.store.tx(|t| t.take_notices("contact_"))?)
    }
}
