//! `retalk register`: publish this identity's keys on the relay.

use super::Ctx;
use crate::error::CliError;
use crate::output::{self, json_line, Lines};

/// `retalk register`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
Publishes your identity key, signing key, one-time keys and fallback key, so
peers can start sessions with you. `init` registers already (unless
--no-register), and every send and receive re-publishes if the relay forgot
you; run this after `init --no-register`, or to check. Prints the summary
{\"unclaimed\", \"republished\", \"replenished\", \"fallback_rotated\", \"resent\"}.
Does not re-send unacknowledged messages (`retalk sync` does).

Examples:
  retalk register -u alice
  retalk register --dir ./alice --relay https://relay.example.com

",
    crate::common_help!()
);

/// Runs `retalk register`.
pub async fn run(ctx: &Ctx<'_>, _args: &Args) -> Result<(), CliError> {
    let opened = ctx.open(true).await?;
    let url = opened.need_relay()?;
    let s = opened.identity.register().await?;
    Lines::stdout().line(&json_line(&s))?;
    output::note(&format!("registered on {url}"));
    Ok(())
}
