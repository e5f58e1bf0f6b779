//! One module per command, plus what they share: opening the selected
//! identity with the right passphrase and relay.

pub mod add;
pub mod id;
pub mod init;
pub mod receive;
pub mod send;

use crate::args::Global;
use crate::backend::{self, Identity};
use crate::env::Env;
use crate::error::CliError;
use crate::identity;
use crate::output;
use crate::relay;
use crate::secret::{self, Passphrase, Purpose, TerminalPrompter};

/// What every command gets: the global options and the environment.
pub struct Ctx<'a> {
    /// `-s`, `-u`, `--server`, `--passphrase-file`.
    pub global: &'a Global,
    /// Environment variables.
    pub env: &'a dyn Env,
}

/// An opened identity.
pub struct Opened {
    /// The identity.
    pub identity: Identity,
}

impl Ctx<'_> {
    /// The passphrase, from file, environment or prompt.
    pub fn passphrase(&self, purpose: Purpose) -> Result<Passphrase, CliError> {
        secret::obtain(
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

    /// Locates and opens the selected identity, applying any relay override.
    /// Checks everything that can be checked before asking for the
    /// passphrase, so a typo never costs a prompt. With `banner`, prints
    /// `using NAME (ID) from DIR` on stderr.
    pub async fn open(&self, banner: bool) -> Result<Opened, CliError> {
        let located = identity::locate(&self.global.selection(), self.env, &backend::exists)?;
        let relay = self.relay_override()?;
        let pass = self.passphrase(Purpose::Unlock)?;
        let mut identity = backend::open(&located.dir, pass.expose()).await?;
        if let Some(url) = relay {
            identity.set_relay_url(&url);
        }
        if banner {
            output::note(&output::banner(
                &identity.name(),
                &identity.user_id(),
                &located.dir,
            ));
        }
        Ok(Opened { identity })
    }
}

impl Opened {
    /// Fails with a refusal when no relay URL is known.
    pub fn need_relay(&self) -> Result<String, CliError> {
        self.identity.relay_url().ok_or_else(relay::missing)
    }
}
