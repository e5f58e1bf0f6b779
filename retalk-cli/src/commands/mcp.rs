//! `retalk mcp`: serve this identity to an AI agent as a Model Context
//! Protocol server on stdin/stdout (the server itself is the `retalk-mcp`
//! crate; this command only selects and opens the identity, exactly like
//! every other command, and hands it over).

use super::Ctx;
use crate::error::CliError;

/// `retalk mcp`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do not keep what the server sends and receives in the identity's
    /// history (kept by default, sealed, so the agent can read the thread
    /// back with the `history` tool)
    #[arg(long)]
    pub no_save: bool,

    /// Refuse mail from senders that are not saved contacts, unread (they
    /// cannot use up your one-time keys)
    #[arg(long)]
    pub peers_only: bool,

    /// No push task: no announcements of new mail and no background key
    /// upkeep (the `wait` tool still wakes on the relay's push; run `sync`
    /// now and then)
    #[arg(long)]
    pub no_push: bool,
}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
Speaks MCP (JSON-RPC, one message per line) on stdin and stdout; stdout
carries nothing else. Logs go to stderr (RETALK_LOG=debug for more). The
identity is chosen like every other command (-s DIR, -u NAME, RETALK_USER)
and unlocked with --passphrase-file, RETALK_PASSPHRASE_FILE, PICKLE_SECRET
or RETALK_PASSPHRASE: the agent never sees the passphrase, and no tool takes
one.

Tools: id, contacts, add, verify, block, send, receive, wait, history, sync,
and rooms: groups, group_create, group_add, group_remove, group_rename,
group_leave, group_join, group_delete (send and history take `group`).
New mail is announced while the server runs (notifications/resources/updated
for retalk://inbox, and log messages) without being taken from the agent.
See docs/mcp.md for host configuration and the security notes.

Examples:
  retalk mcp -u alice --passphrase-file ~/.config/retalk/alice.pass
  claude mcp add retalk -- retalk mcp -u alice --passphrase-file ~/.config/retalk/alice.pass
  RETALK_PASSPHRASE_FILE=~/alice.pass retalk mcp -s ./alice --no-save

",
    crate::common_help!()
);

/// Runs `retalk mcp` until the client closes stdin.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let opened = ctx.open(true).await?;
    opened.need_relay()?;
    let user = opened.identity.into_user();
    retalk_mcp::log_to_stderr();
    let options = retalk_mcp::Options {
        save: !args.no_save,
        peers_only: args.peers_only,
        push: !args.no_push,
    };
    retalk_mcp::serve_stdio(user, options)
        .await
        .map_err(|e| CliError::failure(e.to_string()))
}
