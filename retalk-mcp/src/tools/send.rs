//! `send {peer, text}`: encrypt and send one message.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::resolve;
use crate::error::ToolError;
use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "Send an end-to-end-encrypted message to a peer (a saved contact \
name or a fingerprint). Returns a receipt once the relay has stored it; the recipient's \
client acknowledges it later. The message is kept in this identity's history unless the \
server runs with --no-save.";

/// Arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The recipient: a saved contact name or a fingerprint (32 hex).
    pub peer: String,
    /// The message text.
    pub text: String,
}

/// The receipt.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Receipt {
    /// The message id (32 hex), the same on the recipient's side.
    pub id: String,
    /// The recipient's fingerprint.
    pub to: String,
    /// The recipient's saved name, if any.
    pub name: Option<String>,
    /// The relay stored it for the recipient.
    pub delivered_to_relay: bool,
    /// It was kept in history.
    pub saved: bool,
}

/// Runs the tool.
pub async fn run(shared: &Shared, args: Args) -> Result<Receipt, ToolError> {
    if args.text.is_empty() {
        return Err(ToolError::bad_args("`text` is empty").hint("write something to send"));
    }
    let to = resolve(shared, &args.peer)?;
    let id = shared.user.send(&to, &args.text).await?;
    if shared.options.save {
        shared.user.history().keep_sent(&to, &id, &args.text)?;
    }
    let name = shared
        .user
        .contacts()
        .get(to.as_str())
        .ok()
        .flatten()
        .map(|c| c.name);
    Ok(Receipt {
        id,
        to: to.to_string(),
        name,
        delivered_to_relay: true,
        saved: shared.options.save,
    })
}
