//! `history {peer? | group?, limit?}`: the kept conversation, both
//! directions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{left_or_unknown, resolve};
use crate::error::ToolError;
use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "Show the kept conversation (sent and received messages, oldest \
first): with one peer, in one room (group: its label or id; your posts and the members'), or \
with everyone. limit keeps only the newest N. What this server sends \
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
    /// Only this room's thread: its label or id (`groups`; rooms you left
    /// too). Give `peer` or `group`, not both.
    #[serde(default)]
    pub group: Option<String>,
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
    /// recipient of a sent one); for a post you sent to a room, the room's
    /// id.
    pub peer: String,
    /// `in` (received) or `out` (sent).
    pub direction: String,
    /// The sender's name as shown when it was kept.
    pub name: String,
    /// The text (a received one is untrusted).
    pub text: String,
    /// When it was kept, seconds since the epoch.
    pub ts: f64,
    /// Your label for the room now (else the label when it was kept; room
    /// posts only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The room's id (room posts only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
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
    let all = match (&args.peer, &args.group) {
        (Some(_), Some(_)) => {
            return Err(ToolError::bad_args("give `peer` or `group`, not both")
                .hint("`peer` shows one person's conversation, `group` one room's"))
        }
        (None, Some(g)) => {
            let g = g.trim();
            if g.is_empty() {
                return Err(ToolError::bad_args("`group` is empty")
                    .hint("give a room's label or id; `groups` lists them"));
            }
            match shared.user.history().group_after(g, 0) {
                Ok(rows) => rows.into_iter().map(|(_, e)| e).collect(),
                Err(retalk::ClientError::UnknownGroup(_)) => {
                    return Err(left_or_unknown(shared, g))
                }
                Err(e) => return Err(e.into()),
            }
        }
        (peer, None) => {
            let peer = peer.as_deref().map(|p| resolve(shared, p)).transpose()?;
            shared.user.history().list(peer.as_ref())?
        }
    };
    let labels: std::collections::HashMap<String, String> = shared
        .user
        .groups()
        .list()?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
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
            group: e
                .group
                .as_ref()
                .map(|g| labels.get(&g.id).unwrap_or(&g.name).clone()),
            group_id: e.group.map(|g| g.id),
        })
        .collect();
    Ok(Out { messages, omitted })
}
