//! The one place that calls the client library (`retalk::User`): it turns
//! library values into the CLI's own types and library errors into
//! [`CliError`]s with hints.

use crate::error::{CliError, Kind};
use crate::follow::Mailbox;
use crate::output::{Batch, Problem, Received};
use retalk::{ClientError, MaintainOptions, User, UserId};
use std::path::Path;
use std::time::Duration;

/// An opened identity.
pub struct Identity {
    user: User,
}

/// True if `dir` holds an identity.
pub fn exists(dir: &Path) -> bool {
    User::exists(dir)
}

/// Turns a library error into a CLI error with a hint at the fix:
/// refusals exit 2, everything else 1.
pub fn client_error(e: ClientError) -> CliError {
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
             `retalk add NAME NEW-ID`",
        ),
        ClientError::UnknownPeer(_) => {
            Some("save the peer first with `retalk add NAME ID`, or pass their 32-hex user id")
        }
        ClientError::NoRelay => Some(
            "pass --server URL, set SERVER_URL, or save one with `retalk init ... --server URL`",
        ),
        ClientError::Unreachable(_) => Some(
            "check that the relay is running and that --server, SERVER_URL or the URL saved \
             at init points at it",
        ),
        ClientError::BadResponse { .. } => {
            Some("check that the relay URL points at a retalk relay")
        }
        _ => None,
    };
    let message = e.to_string();
    CliError {
        kind,
        message,
        hint: hint.map(str::to_string),
    }
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
    Ok(Identity { user })
}

/// Opens an existing identity. A Python retalk 0.0.1 identity folder is
/// taken over on its first open (by the library); say so on stderr.
pub async fn open(dir: &Path, passphrase: &str) -> Result<Identity, CliError> {
    let python = retalk::migrate::needs_migration(dir);
    let user = User::open(dir, passphrase).await.map_err(client_error)?;
    if python {
        crate::output::note(&format!(
            "retalk: took over the Python retalk 0.0.1 identity in {} (same user id); \
             its original files are in {}",
            dir.display(),
            dir.join(retalk::migrate::BACKUP_DIR).display()
        ));
    }
    Ok(Identity { user })
}

impl Identity {
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
        self.user
            .resolve_peer(name_or_id)
            .map(|id| id.to_string())
            .map_err(|e| {
                let unknown = matches!(e, ClientError::UnknownPeer(_));
                let err = client_error(e);
                if unknown {
                    err.hint(format!(
                        "save the peer first with `retalk add {} THEIR-USER-ID`, \
                         or pass their 32-hex user id",
                        crate::identity::shell_word(Path::new(name_or_id))
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

    /// Saves a peer.
    pub fn add_peer(&self, name: &str, id: &str, pin: Option<&str>) -> Result<(), CliError> {
        let id = parse_id(id)?;
        self.user.add_peer(name, &id, pin).map_err(client_error)
    }

    /// Reads and decrypts the mailbox, holding up to `wait` if the relay
    /// supports it.
    pub async fn receive(&self, wait: Option<Duration>) -> Result<Batch, CliError> {
        let inbox = self.user.receive_inbox(wait).await.map_err(client_error)?;
        Ok(Batch {
            messages: inbox
                .messages
                .into_iter()
                .map(|m| Received {
                    id: m.id,
                    from: m.from.to_string(),
                    name: m.name,
                    text: m.text,
                })
                .collect(),
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

    async fn maintain(&mut self) -> Result<(), CliError> {
        self.user
            .maintain(MaintainOptions::default())
            .await
            .map(|_| ())
            .map_err(client_error)
    }
}
