//! `retalk init`: create an identity and print its id (and only its id) on
//! stdout.

use super::Ctx;
use crate::backend;
use std::path::PathBuf;

/// `retalk init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the new identity (or use -s/--dir DIR, or -u [NAME])
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Self-chosen display name, sent encrypted inside each message; peers see
    /// it as `~NAME` (unverified) unless they saved a name for you. Defaults
    /// to the -u NAME
    #[arg(long, visible_alias = "display-name", value_name = "NAME")]
    pub name: Option<String>,

    /// Do not publish the keys on the relay now (the first send, receive or
    /// `retalk register` does)
    #[arg(long)]
    pub no_register: bool,
}
use crate::error::CliError;
use crate::output::{self, Lines};
use crate::select::identity::{self, shell_word, Source};
use crate::select::secret::Purpose;

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
Examples:
  retalk init ./alice --name alice          identity in ./alice
  retalk init -u                            the user-level `default` identity
  retalk init -u work --name work-bot --server https://relay.example.com
  retalk init --dir ./bot --relay https://relay.example.com --display-name bot --passphrase-file pw
  retalk init -u alice --no-register        create now, publish keys later
  ALICE_ID=$(PICKLE_SECRET=... retalk init ./alice --name alice)

",
    crate::common_help!()
);

/// Longest accepted display name, in characters.
pub const MAX_NAME: usize = 64;

/// Checks a self-chosen display name: printable, at most [`MAX_NAME`]
/// characters. Empty means "no name".
pub fn check_display_name(name: &str) -> Result<(), CliError> {
    if name.chars().any(char::is_control) {
        return Err(
            CliError::usage("--name must not contain control characters")
                .hint("use a short printable name such as `alice` or `build-bot`"),
        );
    }
    if name.chars().count() > MAX_NAME {
        return Err(
            CliError::usage(format!("--name is longer than {MAX_NAME} characters"))
                .hint("use a short name; peers see it as ~NAME next to each message"),
        );
    }
    Ok(())
}

/// Runs `retalk init`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let located = identity::init_location(
        args.dir.as_deref(),
        &ctx.global.selection(),
        ctx.env,
        &backend::exists,
    )?;
    let dir = &located.dir;
    if backend::exists(dir) {
        let use_it = match &located.source {
            Source::UserLevel(n) if n == identity::DEFAULT_USER => "-u".to_string(),
            Source::UserLevel(n) => format!("-u {n}"),
            _ => format!("-s {}", shell_word(dir)),
        };
        return Err(
            CliError::refusal(format!("an identity already exists at {}", dir.display())).hint(
                format!(
                    "use it with `retalk {use_it} ...`, or choose another location; \
             init never overwrites an identity"
                ),
            ),
        );
    }
    let default_name = match &located.source {
        Source::UserLevel(n) if n != identity::DEFAULT_USER => n.clone(),
        _ => String::new(),
    };
    let name = args.name.as_deref().unwrap_or(&default_name);
    check_display_name(name)?;
    let relay = ctx
        .relay_override()?
        .or_else(|| crate::select::relay::owner_default(ctx.env));
    let pass = ctx.passphrase(Purpose::Create)?;
    let mut me = backend::create(dir, pass.expose(), name, relay.as_deref()).await?;
    if ctx.global.no_passphrase {
        me.mark_unprotected()?;
    }
    // Saved like 0.3.x does, so later commands use it without the flag. An
    // API key gates use of the relay, never the identity: it is kept with
    // the other public settings, not sealed.
    if let Some(key) = ctx.global.api_key.as_deref() {
        me.save_api_key(key)?;
    }
    let id = me.user_id();
    let shown = if name.is_empty() {
        String::new()
    } else {
        format!(" {}", output::one_line(name))
    };
    output::note(&format!(
        "created identity{shown} at {}; share its user id (below) with peers over a \
         channel the relay does not control",
        dir.display()
    ));
    match me.relay_url() {
        Some(url) => output::note(&format!("relay saved: {url}")),
        None => output::note(
            "no relay saved: later commands need --server URL or SERVER_URL \
             (or run init again elsewhere with --server)",
        ),
    }
    if me.relay_url().is_some() && !args.no_register {
        me.set_api_key(ctx.api_key().as_deref());
        match me.register().await {
            Ok(_) => output::note("registered: the relay has your keys; peers can message you"),
            Err(e) => output::note(&format!(
                "warning: NOT registered ({}); run `retalk register` once the relay is reachable \
                 (any send or receive publishes the keys too)",
                crate::output::one_line(&e.message)
            )),
        }
    }
    Lines::stdout().line(&id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names() {
        assert!(check_display_name("").is_ok());
        assert!(check_display_name("alice-1 ✓").is_ok());
        assert!(check_display_name("a\nb").is_err());
        assert!(check_display_name("\x1b[31m").is_err());
        assert!(check_display_name(&"x".repeat(MAX_NAME)).is_ok());
        assert!(check_display_name(&"x".repeat(MAX_NAME + 1)).is_err());
    }
}
