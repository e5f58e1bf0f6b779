//! `retalk history [--peer P]`: print kept messages as JSON lines.

use super::Ctx;
use crate::error::CliError;
use crate::output::{json_line, HistoryLine, Lines};

/// `retalk history`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the conversation with this peer (name or id)
    #[arg(long, value_name = "PEER")]
    pub peer: Option<String>,

    /// Only this room (its label or id): posts sent and received
    #[arg(long, value_name = "NAME", conflicts_with = "peer")]
    pub group: Option<String>,
}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
Prints the messages kept by `send --save` and `receive --save` (or with
RETALK_SAVE_MESSAGE=1), oldest first, one JSON object per line:
{\"id\", \"from\", \"name\", \"direction\", \"text\"}. Does not contact the relay.
The texts are stored sealed with a key derived from your passphrase
(Argon2id), never in the clear.

Examples:
  retalk history --peer bob
  retalk history --group team                 a room (rows add \"group\", \"group_id\")
  retalk history | jq -r 'select(.direction == \"in\") | .text'

",
    crate::common_help!()
);

/// Runs `retalk history`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let opened = ctx.open(false).await?;
    let me = &opened.identity;
    let peer = args
        .peer
        .as_deref()
        .map(|p| me.resolve_peer(p))
        .transpose()?;
    let names: std::collections::HashMap<String, String> = me
        .contacts()?
        .into_iter()
        .map(|c| (c.id.to_string(), c.name))
        .collect();
    let my_id = me.user_id();
    let my_name = me.name();
    let mut out = Lines::stdout();
    let entries = match &args.group {
        Some(g) => me
            .group_history_after(g, 0)?
            .into_iter()
            .map(|(_, e)| e)
            .collect(),
        None => me.history(peer.as_deref())?,
    };
    for e in entries {
        let out_dir = e.direction == retalk::Direction::Out;
        let from = if out_dir {
            my_id.clone()
        } else {
            e.peer.to_string()
        };
        let name = if out_dir {
            if my_name.is_empty() {
                "me".to_string()
            } else {
                my_name.clone()
            }
        } else {
            names
                .get(e.peer.as_str())
                .cloned()
                .unwrap_or(e.name.clone())
        };
        let line = HistoryLine {
            id: &e.id,
            from: &from,
            name: &name,
            direction: if out_dir { "out" } else { "in" },
            text: &e.text,
        };
        match &e.group {
            // 0.3.0 adds the room's tags to group rows
            Some(g) => out.line(&json_line(
                &crate::output::Ordered::default()
                    .with("id", e.id.clone().into())
                    .with("from", from.clone().into())
                    .with("name", name.clone().into())
                    .with("direction", line.direction.into())
                    .with("text", e.text.clone().into())
                    .with("group", g.name.clone().into())
                    .with("group_id", g.id.clone().into()),
            ))?,
            None => out.line(&json_line(&line))?,
        }
    }
    Ok(())
}
