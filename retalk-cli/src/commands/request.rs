//! `retalk request INVITER --code CODE [--peer NAME]`: redeem an invite
//! code (retalk 0.3.x compatible).

use super::Ctx;
use crate::backend::client_error;
use crate::error::CliError;
use crate::output::{self, json_line, Lines, Receipt};

/// `retalk request`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The inviter's 32-hex user id (from their invite)
    #[arg(value_name = "INVITER")]
    pub inviter: String,

    /// The invite code they gave you
    #[arg(long, value_name = "CODE")]
    pub code: Option<String>,

    /// Your name for the inviter (default: `peer-` and their id's first
    /// characters)
    #[arg(long, value_name = "NAME")]
    pub peer: Option<String>,
}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
Saves the inviter as a verified contact (their keys come from the relay and
must match the id), then sends them one encrypted contact request carrying
the code and your card; their `retalk invite watch` adds you back. Prints
{\"id\", \"to\"}. Whether the code was accepted is not visible from here (a
bad code looks like a slow inviter, on purpose): their first message is the
confirmation.

Examples:
  retalk request 0f9a3d2c8b7e65410f9a3d2c8b7e6541 --code CODE
  retalk request 0f9a3d2c8b7e65410f9a3d2c8b7e6541 --code CODE --peer marzia

",
    crate::common_help!()
);

/// Runs `retalk request`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let code = args
        .code
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| CliError::usage("request needs --code CODE"))?;
    let inviter = retalk::UserId::parse(&args.inviter.trim().to_ascii_lowercase(), "inviter")
        .map_err(|_| {
            CliError::usage("an inviter is addressed by their 32-hex user id")
                .hint("copy the id from their invite")
        })?;
    let opened = ctx.open(true).await?;
    opened.need_relay()?;
    let me = &opened.identity;
    me.ensure_published().await?;
    let id = me
        .invites()
        .request(&inviter, code, args.peer.as_deref())
        .await
        .map_err(client_error)?;
    Lines::stdout().line(&json_line(&Receipt {
        id: &id,
        to: inviter.as_str(),
    }))?;
    output::note(
        "request sent: the inviter's watch accepts it and they can then message you. \
         Acceptance is not observable from this side; ask them out-of-band if unsure.",
    );
    Ok(())
}
