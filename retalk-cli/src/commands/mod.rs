//! One module per command, plus what they share: opening the selected
//! identity with the right passphrase and relay.

pub mod add;
pub mod block;
pub mod completions;
pub mod config;
pub mod contacts;
pub mod group;
pub mod history;
pub mod id;
pub mod import;
pub mod init;
pub mod invite;
pub mod man;
pub mod mcp;
pub mod receive;
pub mod register;
pub mod request;
pub mod send;
pub mod share;
pub mod show;
pub mod sync;
pub mod verify;

use crate::args::Global;
use crate::backend::{self, Identity};
use crate::env::Env;
use crate::error::CliError;
use crate::output;
use crate::select::identity;
use crate::select::relay;
use crate::select::secret::{self, Passphrase, Purpose, TerminalPrompter};

/// What every command gets: the global options and the environment.
pub struct Ctx<'a> {
    /// `-s`, `-u`, `--server`, `--passphrase-file`.
    pub global: &'a Global,
    /// Environment variables.
    pub env: &'a dyn Env,
    /// The command line uses a 0.3-only spelling (--dir, --user, --relay,
    /// -p, --passphrase-path, ...) or RETALK_USER / RETALK_HOME is set: where
    /// the two generations print different things for the same command
    /// (`id --json`), the 0.3 form is printed.
    pub dialect_03: bool,
}

/// Whether `argv` or the environment speak 0.3 (see [`Ctx::dialect_03`]).
pub fn speaks_03(argv: &[std::ffi::OsString], env: &dyn Env) -> bool {
    const SPELLINGS: &[&str] = &[
        "--dir",
        "--user",
        "--relay",
        "-r",
        "-p",
        "--passphrase",
        "--passphrase-path",
        "--no-passphrase",
        "--api-key",
        "--display-name",
        "--peer",
        "--card",
    ];
    argv.iter().any(|a| {
        let a = a.to_string_lossy();
        let flag = a.split('=').next().unwrap_or("");
        SPELLINGS.contains(&flag)
    }) || env.get(crate::env::RETALK_USER).is_some()
        || env.get(crate::env::RETALK_HOME).is_some()
}

/// An opened identity.
pub struct Opened {
    /// The identity.
    pub identity: Identity,
}

impl Ctx<'_> {
    /// The passphrase, from file, environment or prompt.
    pub fn passphrase(&self, purpose: Purpose) -> Result<Passphrase, CliError> {
        secret::choose(
            self.global.passphrase.as_deref(),
            self.global.no_passphrase,
            self.global.passphrase_file.as_deref(),
            self.env,
            purpose,
            &mut TerminalPrompter,
            &mut |w| output::note(&format!("retalk: {w}")),
        )
    }

    /// The relay URL given for this run (flag or environment), validated.
    pub fn relay_override(&self) -> Result<Option<String>, CliError> {
        Ok(relay::override_url(self.global.server.as_deref(), self.env)?.map(|(u, _)| u))
    }

    /// Whether the command line or the environment names an identity
    /// (`-s`/`--dir`, `-u`/`--user`, STORE, RETALK_USER).
    pub fn names_identity(&self) -> bool {
        let s = self.global.selection();
        s.store.is_some()
            || s.user_level.is_some()
            || self.env.get(crate::env::STORE).is_some()
            || self.env.get(crate::env::RETALK_USER).is_some()
    }

    /// Locates and opens the selected identity, applying any relay override.
    /// Checks everything that can be checked before asking for the
    /// passphrase, so a typo never costs a prompt. With `banner`, prints
    /// `using NAME (ID) from DIR` on stderr.
    pub async fn open(&self, banner: bool) -> Result<Opened, CliError> {
        let located = identity::locate(&self.global.selection(), self.env, &backend::exists)?;
        self.open_dir(&located.dir, banner).await
    }

    /// Opens the identity in `dir` (see [`open`](Self::open)).
    pub async fn open_dir(&self, dir: &std::path::Path, banner: bool) -> Result<Opened, CliError> {
        let relay = self.relay_override()?;
        // An identity made with --no-passphrase records it (as 0.3.x does),
        // so later commands open it without one and never prompt.
        let pass = if backend::recorded_no_passphrase(dir) {
            secret::unprotected()
        } else {
            self.passphrase(Purpose::Unlock)?
        };
        let mut identity = backend::open(dir, pass.expose()).await?;
        if let Some(url) = relay {
            identity.set_relay_url(&url);
        } else if identity.relay_url().is_none() {
            if let Some(url) = relay::owner_default(self.env) {
                identity.set_relay_url(&url);
            }
        }
        // --api-key / RETALK_API_KEY, else the key saved at init (0.3.x).
        let api_key = self.api_key().or_else(|| identity.saved_api_key());
        identity.set_api_key(api_key.as_deref());
        if let Ok(global) = identity::global_contacts(self.env) {
            identity.set_global_contacts(global);
        }
        if banner {
            output::note(&output::banner(&identity.name(), &identity.user_id(), dir));
        }
        Ok(Opened { identity })
    }

    /// `--api-key`, else RETALK_API_KEY.
    pub fn api_key(&self) -> Option<String> {
        self.global
            .api_key
            .clone()
            .or_else(|| self.env.get(crate::env::RETALK_API_KEY))
    }
}

impl Opened {
    /// Fails with a refusal when no relay URL is known.
    pub fn need_relay(&self) -> Result<String, CliError> {
        self.identity.relay_url().ok_or_else(relay::missing)
    }
}

/// Whether to keep messages for `history`: `--save`, or RETALK_SAVE_MESSAGE
/// set to a truthy value (1, true, t, yes, y, on; as 0.3.0).
pub fn save_messages(flag: bool, env: &dyn Env) -> bool {
    flag || env.get(crate::env::RETALK_SAVE_MESSAGE).is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "t" | "yes" | "y" | "on"
        )
    })
}
