//! `retalk block PEER | --remove PEER | --list`: the block list.

use super::Ctx;
use crate::error::CliError;
use crate::output::{self, json_line, Lines};

/// `retalk block`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A saved name or a 32-hex user id
    #[arg(value_name = "PEER")]
    pub peer: Option<String>,

    /// Unblock PEER instead
    #[arg(long)]
    pub remove: bool,

    /// Show the block list
    #[arg(long, conflicts_with_all = ["peer", "remove"])]
    pub list: bool,

    /// With --list, one JSON object per line: {"fingerprint", "name"}
    #[arg(long, requires = "list")]
    pub json: bool,
}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
Mail from a blocked sender is dropped before it is decrypted (so it cannot
use up your one-time keys) and refused at the relay, which then refuses the
sender's re-sends.

Examples:
  retalk block mallory
  retalk block --remove mallory
  retalk block --list --json

",
    crate::common_help!()
);

/// Runs `retalk block`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let opened = ctx.open(false).await?;
    let me = &opened.identity;
    if args.list {
        let names: std::collections::HashMap<String, String> = me
            .contacts()?
            .into_iter()
            .map(|c| (c.id.to_string(), c.name))
            .collect();
        let mut out = Lines::stdout();
        for id in me.blocked()? {
            let name = names.get(&id).cloned().unwrap_or_default();
            out.line(&if args.json {
                json_line(&serde_json::json!({"fingerprint": id, "name": name}))
            } else if name.is_empty() {
                id
            } else {
                format!("{id}\t{}", output::one_line(&name))
            })?;
        }
        return Ok(());
    }
    let Some(peer) = &args.peer else {
        return Err(CliError::usage(
            "block needs a peer (to block, or with --remove to unblock), or --list",
        ));
    };
    let id = me.resolve_peer(peer)?;
    let changed = me.block(&id, !args.remove)?;
    let what = match (args.remove, changed) {
        (false, true) => "blocked",
        (false, false) => "already blocked:",
        (true, true) => "unblocked",
        (true, false) => "was not blocked:",
    };
    output::note(&format!("{what} {} ({id})", output::one_line(peer)));
    Ok(())
}
