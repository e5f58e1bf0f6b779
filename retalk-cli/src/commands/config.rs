//! `retalk config [--relay URL]`: show or change the saved settings.

use super::Ctx;
use crate::error::CliError;
use crate::output::{self, json_line, Lines};
use crate::select::relay;

/// `retalk config`. The relay URL to save is the global `-r/--relay URL`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Forget the saved relay URL
    #[arg(long, conflicts_with = "unset_api_key")]
    pub clear_relay: bool,

    /// (kept for symmetry) forget nothing else
    #[arg(long, hide = true)]
    pub unset_api_key: bool,
}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
With an identity selected (-u NAME, --dir DIR, -s DIR, STORE, RETALK_USER):
prints that identity's settings as JSON, {\"relay\"}; --relay URL (or --server
URL) saves URL as its relay for every later command; --relay \"\" or
--clear-relay forgets it.

Without one (as retalk 0.3.0): the owner-wide settings in
$RETALK_HOME/config.json (default ~/.retalk/config.json), printed as indented
JSON; --relay URL sets the default relay of every identity that has none of
its own, and of `init` without --relay; --relay \"\" or --clear-relay removes it.

Examples:
  retalk config -u alice
  retalk config -u alice --relay https://new-relay.example.com
  retalk config -u alice --clear-relay
  retalk config --relay https://relay.example.com

",
    crate::common_help!()
);

/// Runs `retalk config`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let flag = ctx.global.server.as_deref();
    if let Some(url) = flag.filter(|u| !u.is_empty()) {
        relay::check(url, relay::Origin::Flag)?;
    }
    if !ctx.names_identity() {
        return owner_wide(ctx, flag, args.clear_relay);
    }
    let mut opened = ctx.open(false).await?;
    let me = &mut opened.identity;
    match flag {
        Some("") => me.save_relay_url(None)?,
        Some(url) => {
            me.save_relay_url(Some(url))?;
            output::note(&format!("relay saved: {url}"));
        }
        None if args.clear_relay => me.save_relay_url(None)?,
        None => {}
    }
    let relay = me.saved_relay_url();
    Lines::stdout().line(&json_line(&serde_json::json!({ "relay": relay })))
}

/// `retalk config` without an identity: the owner-wide config.json.
fn owner_wide(ctx: &Ctx<'_>, flag: Option<&str>, clear: bool) -> Result<(), CliError> {
    let mut cfg = relay::owner_config(ctx.env);
    let change = match flag {
        Some("") => Some(None),
        Some(url) => Some(Some(url)),
        None if clear => Some(None),
        None => None,
    };
    if let Some(new) = change {
        match new {
            Some(url) => cfg.insert("relay".into(), url.into()),
            None => cfg.remove("relay"),
        };
        let path = relay::write_owner_config(ctx.env, &cfg)?;
        match new {
            Some(url) => output::note(&format!("default relay saved in {}: {url}", path.display())),
            None => output::note(&format!("default relay removed from {}", path.display())),
        }
    }
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(cfg))
        .map_err(|e| CliError::refusal(format!("cannot encode the settings: {e}")))?;
    let mut out = Lines::stdout();
    for line in text.lines() {
        out.line(line)?;
    }
    Ok(())
}
