//! The one place that calls the client library (`retalk::User`): it turns
//! library values into the CLI's own types and library errors into
//! [`CliError`]s with hints.

use crate::error::{CliError, Kind};
use crate::follow::Mailbox;
use crate::output::{Batch, Problem, Received};
use retalk::proto::WireError;
use retalk::{AddOptions, Added, ClientError, MaintainOptions, ReceiveOptions, User, UserId};
use std::path::Path;
use std::time::Duration;

/// An opened identity.
pub struct Identity {
    user: User,
    /// The owner-wide contact list this identity also sees (0.3.x's
    /// `~/.retalk/contacts.db`), when its location is known.
    global: Option<retalk::GlobalContacts>,
    /// `receive --peer`: only these senders' messages are shown (the others
    /// stay held in the store for a later receive).
    only: Vec<String>,
    peers_only: bool,
    save: bool,
}

/// What `sync` and `register` report (0.3's JSON summary).
#[derive(Debug, serde::Serialize)]
pub struct SyncSummary {
    /// Unclaimed one-time keys on the relay before any publishing.
    pub unclaimed: u64,
    /// The relay had forgotten us: everything was published again.
    pub republished: bool,
    /// A batch of one-time keys was published.
    pub replenished: bool,
    /// A new fallback key was published.
    pub fallback_rotated: bool,
    /// Unacknowledged messages re-sent.
    pub resent: usize,
}

/// True if `dir` holds an identity.
pub fn exists(dir: &Path) -> bool {
    User::exists(dir)
}

/// Turns a library error into a CLI error with a hint at the fix:
/// refusals exit 2, everything else 1.
pub fn client_error(e: ClientError) -> CliError {
    if let ClientError::Relay { error, .. } = &e {
        if let Some(err) = permanent(error) {
            return err;
        }
    }
    let kind = if e.is_refusal() {
        Kind::Refusal
    } else {
        Kind::Failure
    };
    let hint = match &e {
        ClientError::NoIdentity(_) => {
            Some("create one with `retalk init`, or select another with -s DIR / -u NAME")
        }
        ClientError::AlreadyExists(_) => Some("choose another location; init never overwrites"),
        ClientError::WrongPassphrase => Some(
            "check the passphrase (--passphrase-file, PICKLE_SECRET or RETALK_PASSPHRASE) \
             and that -s/-u/STORE select the identity you mean",
        ),
        ClientError::PinMismatch { .. } => Some(
            "the relay served keys that are not this peer's; compare the user id with the peer \
             over another channel, and if they really have new keys, save the new id with \
             `retalk add NEW-ID --peer NAME --override`",
        ),
        ClientError::UnknownGroup(_) => Some("see `retalk group list`"),
        ClientError::UnknownPeer(_) => Some(
            "save the peer first with `retalk add ID --peer NAME`, or pass their 32-hex user id",
        ),
        ClientError::NameTaken { .. } => {
            Some("pick another name, or pass --override to re-point this one")
        }
        ClientError::NoRelay => {
            Some("pass --relay URL, set RETALK_RELAY, or save one with `retalk config --relay URL`")
        }
        ClientError::Unreachable(_) => Some(
            "check that the relay is running and that --relay, RETALK_RELAY or the saved URL \
             (`retalk config`) points at it",
        ),
        ClientError::BadResponse { .. } => {
            Some("check that the relay URL points at a retalk relay")
        }
        ClientError::KeptForResend { .. } => Some(
            "the relay does not know the recipient yet (it may have lost its database); \
             `retalk sync` or a running `retalk receive --follow` re-sends it",
        ),
        _ => None,
    };
    let message = match &e {
        // The protocol's tool names (send_message, claim_key...) mean
        // nothing to a person: say what happened without them.
        ClientError::Relay { error, .. } => format!(
            "the relay refused: {}",
            crate::output::one_line(&error.to_string())
        ),
        ClientError::BadResponse { detail, .. } => format!(
            "the relay sent an invalid answer: {}",
            crate::output::one_line(detail)
        ),
        _ => crate::output::one_line(&e.to_string()),
    };
    CliError {
        kind,
        message,
        hint: hint.map(str::to_string),
    }
}

/// Relay refusals that retrying cannot fix (exit 3), said without the
/// protocol's tool names and with what to do instead.
fn permanent(error: &WireError) -> Option<CliError> {
    let reason = crate::output::one_line(&error.to_string());
    let (message, hint) = match error {
        WireError::Auth(_) => (
            format!("the relay refused the request's signature ({reason})"),
            "requests are signed for the relay's public URL: use exactly the URL the relay \
             announces (e.g. `http://127.0.0.1:8766` and `http://localhost:8766` differ), \
             with --relay URL or `retalk config --relay URL`"
                .to_string(),
        ),
        WireError::TooLarge(_) => (
            format!("the message is too large for this relay ({reason})"),
            "send a shorter message, or split it: the relay caps the size of each message \
             (the reference default allows about 48 KB of text)"
                .to_string(),
        ),
        WireError::NotFound(_) => (
            format!("the relay does not know this user ({reason})"),
            "the peer has not published keys yet: ask them to run `retalk register` (or any \
             receive), and check their user id"
                .to_string(),
        ),
        _ => return None,
    };
    Some(CliError::permanent(message).hint(hint))
}

/// Creates a new identity.
pub async fn create(
    dir: &Path,
    passphrase: &str,
    name: &str,
    relay_url: Option<&str>,
) -> Result<Identity, CliError> {
    let user = User::create(dir, passphrase, name, relay_url)
        .await
        .map_err(client_error)?;
    Ok(Identity::new(user))
}

/// Whether the identity in `dir` records that it has no passphrase
/// (`init --no-passphrase`, ours or retalk 0.3.x's).
pub fn recorded_no_passphrase(dir: &Path) -> bool {
    User::recorded_setting(dir, "no_passphrase").as_deref() == Some("1")
}

/// Opens an existing identity. A Python retalk 0.0.1 or 0.3.x identity
/// folder is taken over on its first open; say so, and what was carried,
/// on stderr.
pub async fn open(dir: &Path, passphrase: &str) -> Result<Identity, CliError> {
    fix_folder_mode(dir);
    if retalk::migrate::pending(dir).is_some() {
        let (d, p) = (dir.to_owned(), passphrase.to_owned());
        let done = tokio::task::spawn_blocking(move || retalk::migrate::import_if_needed(&d, &p))
            .await
            .map_err(|e| CliError::failure(format!("taking over the identity: {e}")))?
            .map_err(|e| client_error(e.into()))?;
        if let Some(m) = done {
            crate::output::note(&took_over(&m));
        }
    }
    let user = User::open(dir, passphrase).await.map_err(client_error)?;
    fix_folder_mode(dir);
    Ok(Identity::new(user))
}

/// The note printed after taking over a Python identity.
fn took_over(m: &retalk::migrate::Migrated) -> String {
    format!(
        "retalk: took over the {} identity in {} (same user id): {} contacts, {} sessions, \
         {} unacknowledged, {} saved messages, {} blocked; its original files are in {}",
        m.from.label(),
        m.dir.display(),
        m.peers,
        m.sessions,
        m.outbox,
        m.history,
        m.blocked,
        m.backup.display()
    )
}

/// Makes an identity folder private (0700) if it is not: a folder that
/// existed before `init` (or was loosened later) keeps its mode otherwise.
fn fix_folder_mode(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(dir) {
            if meta.permissions().mode() & 0o077 != 0 {
                let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

impl Identity {
    fn new(user: User) -> Self {
        Identity {
            user,
            global: None,
            only: Vec::new(),
            peers_only: false,
            save: false,
        }
    }

    /// `receive` settings: which senders to show, strangers refused, keep
    /// for history.
    pub fn configure_receive(&mut self, only: Vec<String>, peers_only: bool, save: bool) {
        self.only = only;
        self.peers_only = peers_only;
        self.save = save;
    }

    /// The library's identity, for front ends that drive it themselves
    /// (`retalk mcp` hands it to the MCP server).
    pub fn into_user(self) -> User {
        self.user
    }

    /// Records that the identity has no passphrase.
    pub fn mark_unprotected(&mut self) -> Result<(), CliError> {
        self.user
            .set_setting("no_passphrase", Some("1"))
            .map_err(client_error)
    }

    /// Sends an API key with every request.
    pub fn set_api_key(&mut self, key: Option<&str>) {
        self.user.set_api_key(key);
    }

    /// The relay API key saved with the identity (`init --api-key`).
    pub fn saved_api_key(&self) -> Option<String> {
        self.user.setting("api_key").ok().flatten()
    }

    /// Saves the relay API key with the identity, for later commands.
    pub fn save_api_key(&mut self, key: &str) -> Result<(), CliError> {
        self.user
            .set_setting("api_key", Some(key))
            .map_err(client_error)
    }

    /// Saves (or forgets) the relay URL.
    pub fn save_relay_url(&mut self, url: Option<&str>) -> Result<(), CliError> {
        self.user.save_relay_url(url).map_err(client_error)
    }

    /// Publishes keys if the relay lacks them and tops them up; no re-sends.
    pub async fn register(&self) -> Result<SyncSummary, CliError> {
        self.sync_with(false).await
    }

    /// Full upkeep: keys, fallback rotation, outbox re-sends.
    pub async fn sync(&self) -> Result<SyncSummary, CliError> {
        self.sync_with(true).await
    }

    async fn sync_with(&self, resend: bool) -> Result<SyncSummary, CliError> {
        let republished = self.user.ensure_published().await.map_err(client_error)?;
        let mut opts = MaintainOptions::default();
        if resend {
            opts.resend_after = Duration::ZERO;
        } else {
            opts.resend_after = Duration::from_secs(u64::MAX / 4);
        }
        let r = self.user.maintain(opts).await.map_err(client_error)?;
        Ok(SyncSummary {
            unclaimed: r.unclaimed,
            republished: republished || r.republished,
            replenished: r.replenished || republished,
            fallback_rotated: r.fallback_rotated || republished,
            resent: r.resent,
        })
    }

    /// Saves a contact; refuses to re-point a name unless `replace`.
    pub fn add_contact(&self, name: &str, id: &str, replace: bool) -> Result<Added, CliError> {
        let id = parse_id(id)?;
        self.user
            .contacts()
            .add(name, &id, AddOptions { replace })
            .map_err(client_error)
    }

    /// Fetches, checks and records a contact's keys.
    pub async fn verify_from_relay(&self, id: &str) -> Result<(String, String), CliError> {
        let id = parse_id(id)?;
        self.user
            .contacts()
            .verify_from_relay(&id)
            .await
            .map_err(client_error)
    }

    /// Checks and records keys given by hand.
    pub fn verify_keys(&self, id: &str, ik: &str, sk: &str) -> Result<(), CliError> {
        let id = parse_id(id)?;
        self.user
            .contacts()
            .verify_keys(&id, ik, sk)
            .map_err(client_error)
    }

    /// Lets this identity also see the owner-wide contact list.
    pub fn set_global_contacts(&mut self, global: retalk::GlobalContacts) {
        self.user.set_global_contacts(Some(global.clone()));
        self.global = Some(global);
    }

    /// The owner-wide contact list, if known.
    pub fn global_contacts(&self) -> Option<&retalk::GlobalContacts> {
        self.global.as_ref()
    }

    /// Saved contacts: this identity's own over the owner-wide list (own
    /// ones win on the same id or name, as in 0.3.x).
    pub fn contacts(&self) -> Result<Vec<retalk::Contact>, CliError> {
        let own = self.user.contacts().list().map_err(client_error)?;
        let global = match &self.global {
            Some(g) => g.list().map_err(client_error)?,
            None => Vec::new(),
        };
        Ok(retalk::overlay_contacts(own, global))
    }

    /// One contact by name or id: this identity's own, else the owner-wide
    /// list's.
    pub fn contact(&self, name_or_id: &str) -> Result<Option<retalk::Contact>, CliError> {
        if let Some(c) = self.own_contact(name_or_id)? {
            return Ok(Some(c));
        }
        self.global_contact(name_or_id)
    }

    /// One of this identity's own contacts (not the owner-wide list's).
    pub fn own_contact(&self, name_or_id: &str) -> Result<Option<retalk::Contact>, CliError> {
        self.user.contacts().get(name_or_id).map_err(client_error)
    }

    /// A contact of the owner-wide list only.
    pub fn global_contact(&self, name_or_id: &str) -> Result<Option<retalk::Contact>, CliError> {
        match &self.global {
            Some(g) => g.get(name_or_id).map_err(client_error),
            None => Ok(None),
        }
    }

    /// Fetches a user's keys from the relay and checks them against the id
    /// (PIN MISMATCH otherwise), recording nothing.
    pub async fn fetch_keys(&self, id: &str) -> Result<(String, String), CliError> {
        let id = parse_id(id)?;
        self.user
            .contacts()
            .fetch_keys(&id)
            .await
            .map_err(client_error)
    }

    /// Removes contacts by name or id; returns the names removed.
    pub fn remove_contact(&self, name_or_id: &str) -> Result<Vec<String>, CliError> {
        self.user
            .contacts()
            .remove(name_or_id)
            .map_err(client_error)
    }

    /// Blocks / unblocks / lists.
    pub fn block(&self, id: &str, on: bool) -> Result<bool, CliError> {
        let id = parse_id(id)?;
        let b = self.user.blocklist();
        if on { b.add(&id) } else { b.remove(&id) }.map_err(client_error)
    }

    /// Blocked ids.
    pub fn blocked(&self) -> Result<Vec<String>, CliError> {
        Ok(self
            .user
            .blocklist()
            .list()
            .map_err(client_error)?
            .into_iter()
            .map(|i| i.to_string())
            .collect())
    }

    /// Keeps a sent message for `history`.
    pub fn keep_sent(&self, to: &str, id: &str, text: &str) -> Result<(), CliError> {
        let to = parse_id(to)?;
        self.user
            .history()
            .keep_sent(&to, id, text)
            .map_err(client_error)
    }

    /// Kept messages (with one peer).
    pub fn history(&self, peer: Option<&str>) -> Result<Vec<retalk::HistoryEntry>, CliError> {
        let peer = peer.map(parse_id).transpose()?;
        self.user
            .history()
            .list(peer.as_ref())
            .map_err(client_error)
    }

    /// Kept messages saved after position `after`, with their positions
    /// (`retalk show`).
    pub fn history_after(
        &self,
        peer: Option<&str>,
        after: i64,
    ) -> Result<Vec<(i64, retalk::HistoryEntry)>, CliError> {
        let peer = peer.map(parse_id).transpose()?;
        self.user
            .history()
            .after(peer.as_ref(), after)
            .map_err(client_error)
    }

    /// The relay URL saved with the identity.
    pub fn saved_relay_url(&self) -> Option<String> {
        self.user.saved_relay_url().map(str::to_string)
    }

    /// Overrides the relay URL for this run (not saved).
    pub fn set_relay_url(&mut self, url: &str) {
        self.user.set_relay_url(url);
    }

    /// The relay URL in effect, if any.
    pub fn relay_url(&self) -> Option<String> {
        self.user.relay_url().map(str::to_string)
    }

    /// The user id.
    pub fn user_id(&self) -> String {
        self.user.user_id().to_string()
    }

    /// Curve25519 public key, base64.
    pub fn identity_key(&self) -> String {
        self.user.identity_key()
    }

    /// Ed25519 public key, base64.
    pub fn signing_key(&self) -> String {
        self.user.signing_key()
    }

    /// Self-chosen display name.
    pub fn name(&self) -> String {
        self.user.name().to_string()
    }

    /// Republishes our keys if the relay forgot us (one round trip when it
    /// did not).
    pub async fn ensure_published(&self) -> Result<(), CliError> {
        self.user
            .ensure_published()
            .await
            .map(|_| ())
            .map_err(client_error)
    }

    /// The user id a saved name or raw id stands for.
    pub fn resolve_peer(&self, name_or_id: &str) -> Result<String, CliError> {
        let t = name_or_id.trim();
        let hexish = t.len() >= 24
            && t.len() <= 40
            && t.len() != 32
            && t.bytes().all(|b| b.is_ascii_hexdigit());
        if hexish && self.user.contacts().get(t).ok().flatten().is_none() {
            return Err(CliError::usage(format!(
                "'{t}' looks like a user id but has {} characters; a user id has 32",
                t.len()
            ))
            .hint("copy the whole id again (the peer prints it with `retalk id`)"));
        }
        let own = self.user.resolve_peer(name_or_id);
        if let Err(ClientError::UnknownPeer(_)) = &own {
            if let Some(c) = self.global_contact(t)? {
                return Ok(c.id.to_string());
            }
        }
        own.map(|id| id.to_string()).map_err(|e| {
            let unknown = matches!(e, ClientError::UnknownPeer(_));
            let err = client_error(e);
            if unknown {
                err.hint(format!(
                    "save the peer first with `retalk add THEIR-USER-ID --peer {}`, \
                         or pass their 32-hex user id",
                    crate::select::identity::shell_word(Path::new(name_or_id))
                ))
            } else {
                err
            }
        })
    }

    /// Sends `text` to the user id `to`; returns the message id.
    pub async fn send(&self, to: &str, text: &str) -> Result<String, CliError> {
        let id = parse_id(to)?;
        self.user.send(&id, text).await.map_err(client_error)
    }

    /// The contacts (library handle; errors go through [`client_error`]).
    pub fn contacts_handle(&self) -> retalk::Contacts<'_> {
        self.user.contacts()
    }

    /// The rooms (library handle; errors go through [`client_error`]).
    pub fn groups(&self) -> retalk::Groups<'_> {
        self.user.groups()
    }

    /// The invite codes (library handle).
    pub fn invites(&self) -> retalk::Invites<'_> {
        self.user.invites()
    }

    /// Keeps a group post for `history`.
    pub fn keep_group_sent(&self, sent: &retalk::GroupSend, text: &str) -> Result<(), CliError> {
        self.user
            .history()
            .keep_group_sent(sent, text)
            .map_err(client_error)
    }

    /// Kept messages of one room after position `after` (`show --group`).
    pub fn group_history_after(
        &self,
        group: &str,
        after: i64,
    ) -> Result<Vec<(i64, retalk::HistoryEntry)>, CliError> {
        self.user
            .history()
            .group_after(group, after)
            .map_err(client_error)
    }

    /// A public setting saved with the identity.
    pub fn setting(&self, key: &str) -> Result<Option<String>, CliError> {
        self.user.setting(key).map_err(client_error)
    }

    /// Saves (or removes) a public setting.
    pub fn set_setting(&self, key: &str, value: Option<&str>) -> Result<(), CliError> {
        self.user.set_setting(key, value).map_err(client_error)
    }

    /// Saves a peer.
    pub fn add_peer(&self, name: &str, id: &str, pin: Option<&str>) -> Result<(), CliError> {
        let id = parse_id(id)?;
        self.user.add_peer(name, &id, pin).map_err(client_error)
    }

    /// Reads and decrypts the mailbox, holding up to `wait` if the relay
    /// supports it. Messages stay held in the store until [`Mailbox::shown`];
    /// with a `receive --peer` filter, other senders' messages are not
    /// returned (they wait, held, for a later receive).
    pub async fn receive(&self, wait: Option<Duration>) -> Result<Batch, CliError> {
        let from = match self.only.as_slice() {
            [one] => Some(parse_id(one)?),
            _ => None,
        };
        let inbox = self
            .user
            .receive_with(&ReceiveOptions {
                wait,
                from,
                peers_only: self.peers_only,
                hold: true,
            })
            .await
            .map_err(client_error)?;
        let mut messages = Vec::new();
        for m in inbox.messages {
            if !self.only.is_empty() && !self.only.iter().any(|o| o == m.from.as_str()) {
                continue;
            }
            if self.save {
                self.user
                    .history()
                    .keep_received(&m)
                    .map_err(client_error)?;
            }
            messages.push(Received {
                id: m.id,
                from: m.from.to_string(),
                name: m.name,
                text: m.text,
                group: m.group.map(|g| (g.id, g.name)),
                notice: m.notice,
            });
        }
        Ok(Batch {
            messages,
            problems: inbox
                .problems
                .into_iter()
                .map(|p| Problem {
                    from: p.from.to_string(),
                    reason: p.reason.to_string(),
                })
                .collect(),
        })
    }
}

fn parse_id(s: &str) -> Result<UserId, CliError> {
    UserId::parse(s, "user id").map_err(|e| {
        CliError::usage(e.to_string()).hint("a user id is 32 hex characters, from `retalk id`")
    })
}

impl Mailbox for Identity {
    async fn heal(&mut self) -> Result<(), CliError> {
        self.ensure_published().await
    }

    async fn supports_wait(&mut self) -> Result<bool, CliError> {
        self.user.relay_supports_wait().await.map_err(client_error)
    }

    async fn fetch(&mut self, wait: Option<Duration>) -> Result<Batch, CliError> {
        self.receive(wait).await
    }

    fn shown(&mut self, m: &Received) -> Result<(), CliError> {
        let from = parse_id(&m.from)?;
        self.user
            .shown(&retalk::Message {
                id: m.id.clone(),
                from,
                name: String::new(),
                text: String::new(),
                group: None,
                notice: None,
            })
            .map_err(client_error)
    }

    async fn maintain(&mut self) -> Result<(), CliError> {
        self.user
            .maintain(MaintainOptions::default())
            .await
            .map(|_| ())
            .map_err(client_error)
    }
}
