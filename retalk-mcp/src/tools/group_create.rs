//! `group_create {name, members}`: make a room.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{resolve_members, GroupOut};
use crate::error::ToolError;
use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "Create a room (group) labelled name with these members (saved \
contact names or fingerprints; you are always a member too). Nothing is sent yet: the members \
learn of the room with your first `send` {group, text}, each getting their own \
end-to-end-encrypted copy (the relay never sees the room). The label is yours only; members keep \
their own.";

/// Arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Your label for the room: a short human name such as `team` (not a
    /// fingerprint; unique among your rooms).
    pub name: String,
    /// The members besides you: saved contact names or fingerprints (at
    /// least one).
    pub members: Vec<String>,
}

/// The result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Out {
    /// The new room.
    pub group: GroupOut,
}

/// Runs the tool.
pub async fn run(shared: &Shared, args: Args) -> Result<Out, ToolError> {
    let name = args.name.trim();
    if name.is_empty() {
        return Err(ToolError::bad_args("`name` is empty")
            .hint("give the room a short label such as `team`"));
    }
    if args.members.is_empty() {
        return Err(ToolError::bad_args(
            "`members` is empty: a room needs at least one member besides you",
        )
        .hint("list saved contact names (see `contacts`) or fingerprints"));
    }
    let ids = resolve_members(shared, &args.members)?;
    let g = shared.user.groups().create(name, &ids).await?;
    Ok(Out {
        group: GroupOut::new(shared, &g),
    })
}
