//! `retalk sync`: keys, outbox and acknowledgements up to date.

use super::Ctx;
use crate::error::CliError;
use crate::output::{self, json_line, Lines};

/// `retalk sync`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
Republishes your keys if the relay forgot them, tops up one-time keys,
rotates the fallback key when due, re-sends every unacknowledged message and
delivers owed acknowledgements. Prints one JSON line:
{\"unclaimed\", \"republished\", \"replenished\", \"fallback_rotated\", \"resent\"}.

Examples:
  retalk sync -u alice
  retalk sync | jq .resent

",
    crate::common_help!()
);

/// Runs `retalk sync`.
pub async fn run(ctx: &Ctx<'_>, _args: &Args) -> Result<(), CliError> {
    let opened = ctx.open(true).await?;
    opened.need_relay()?;
    let s = opened.identity.sync().await?;
    Lines::stdout().line(&json_line(&s))?;
    output::note(&format!(
        "synced{}",
        if s.republished || s.replenished || s.fallback_rotated || s.resent > 0 {
            format!(" (resent={})", s.resent)
        } else {
            " (up to date)".into()
        }
    ));
    Ok(())
}
