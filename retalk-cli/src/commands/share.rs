//! `retalk share --peer P CONTACT [--as NAME]`: introduce a contact to a
//! peer by sending its card, encrypted (0.3.x's `share`).

use super::Ctx;
use crate::backend::client_error;
use crate::error::CliError;
use crate::output::{self, Lines};

/// `retalk share`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The recipient: a saved contact name or a 32-hex user id
    #[arg(long, value_name = "PEER")]
    pub peer: String,

    /// The contact to introduce: a saved contact name or user id
    #[arg(value_name = "CONTACT")]
    pub contact: String,

    /// The name to recommend (default: your saved name for the contact)
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: Option<String>,
}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
Sends CONTACT's card (its id, a recommended name, and its keys if you
verified them) to PEER, end-to-end encrypted. PEER sees it in `receive` as a
{\"kind\": \"contact\", \"card\": {...}} record and saves it with `retalk import
--inbox`; the keys are checked against the id again there, so a tampered card
is refused. Like `send`, it stays in your outbox until PEER acknowledges it.
Prints {\"id\", \"to\", \"shared\"} on stdout.

Examples:
  retalk share --peer carol bob              introduce bob to carol
  retalk share --peer carol bob --as bobby   recommending the name bobby

",
    crate::common_help!()
);

/// Runs `retalk share`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    if let Some(n) = &args.as_name {
        super::add::check_peer_name(n)?;
    }
    let opened = ctx.open(true).await?;
    opened.need_relay()?;
    let me = &opened.identity;
    let to = me.resolve_peer(&args.peer)?;
    let c = me.contact(&args.contact)?.ok_or_else(|| {
        CliError::refusal(format!(
            "no saved contact '{}' to share",
            output::one_line(&args.contact)
        ))
        .hint("see `retalk contacts`")
    })?;
    let shared = c.id.to_string();
    let card = c.card(args.as_name.as_deref());
    let to_id = retalk::UserId::parse(&to, "user id")
        .map_err(|_| CliError::usage("a user id is 32 hex characters"))?;
    me.ensure_published().await?;
    let id = me
        .contacts_handle()
        .share(&to_id, card)
        .await
        .map_err(client_error)?;
    output::note(&format!(
        "shared contact {shared} with {}",
        output::one_line(&args.peer)
    ));
    Lines::stdout().line(&output::json_line(&serde_json::json!({
        "id": id, "to": to, "shared": shared,
    })))
}
