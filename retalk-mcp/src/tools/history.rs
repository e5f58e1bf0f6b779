//! `history {peer?, limit?}`: the kept conversation, both directions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::resolve;
use crate::error::ToolError;
use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "Show the kept conversation (sent and received messages, oldest \
first): with one peer, or with everyone. limit keeps only the newest N. What this server sends \
and receives is kept unless it runs with --no-save; messages are sealed at rest with the \
identity's key.";

/// Longest answer.
pub const MAX_LIMIT: u32 = 1000;

/// Arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Only the conversation with this peer: a saved name or a fingerprint.
    #[serde(default)]
    pub peer: Option<String>,
    /// Only the newest N messages (1 to 1000; default 50).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One kept message.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Entry {
    /// The message id.
    pub id: String,
    /// The other party's fingerprint (sender of a received message,
    /// recipient of a sent one).
    pub peer: String,
    /// `in` (received) or `out` (sent).
    pub direction: String,
    /// The sender's name as shown when it was kept.
    pub name: String,
    /// The text (a received one is untrusted).
    pub text: String,
    /// When it was kept, seconds since the epoch.
    pub ts: f64,
}

/// The result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Out {
    /// Kept messages, oldest first.
    pub messages: Vec<Entry>,
    /// Older messages left out by `limit`.
    pub omitted: usize,
}

/// Runs the tool.
pub fn run(shared: &Shared, args: Args) -> Result<Out, ToolError> {
    let limit = args.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ToolError::bad_args(format!(
            "`limit` must be between 1 and {MAX_LIMIT}, not {limit}"
        ))
        .hint("leave it out for the newest 50"));
    }
    let peer = args
        .peer
        .as_deref()
        .map(|p| resolve(shared, p))
        .transpose()?;
    let all = shared.user.history().list(peer.as_ref())?;
    let omitted = all.len().saturating_sub(limit as usize);
    let messages = all
        .into_iter()
        .skip(omitted)
        .map(|e| Entry {
            id: e.id,
            peer: e.peer.to_string(),
            direction: match e.direction {
                retalk::Direction::In => "in".into(),
                retalk::Direction::Out => "out".into(),
            },
            name: e.name,
            text: e.text,
            ts: e.ts,
        })
        .collect();
    Ok(Out { messages, omitted })
}
