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
Prints this identity's settings as JSON: {\"relay\"}. With --relay URL (or
--server URL), saves URL as the identity's relay for every later command;
--relay \"\" or --clear-relay forgets it. (retalk 0.3.0 keeps one relay for all
identities in ~/.retalk/config.json; here each identity keeps its own.)

Examples:
  retalk config -u alice
  retalk config -u alice --relay https://new-relay.example.com
  retalk config -u alice --clear-relay

",
    crate::common_help!()
);

/// Runs `retalk config`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let flag = ctx.global.server.as_deref();
    if let Some(url) = flag.filter(|u| !u.is_empty()) {
        relay::check(url, relay::Origin::Flag)?;
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
