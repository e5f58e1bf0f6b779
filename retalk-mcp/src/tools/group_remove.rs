//! `group_remove {group, members}`: remove members from a room.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{find_group, resolve_members, GroupOut};
use crate::error::ToolError;
use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "Remove members from a room (saved contact names or \
fingerprints). They stop getting your posts at once; the other members' clients drop them \
with your next `send` to the room, and a removed member cannot list themselves back (their \
posts to the room are refused).";

/// Arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The room: its label or id.
    pub group: String,
    /// The members to remove: saved contact names or fingerprints.
    pub members: Vec<String>,
}

/// The result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Out {
    /// The room now.
    pub group: GroupOut,
    /// How many were removed.
    pub removed: usize,
}

/// Runs the tool.
pub fn run(shared: &Shared, args: Args) -> Result<Out, ToolError> {
    let g = find_group(shared, &args.group)?;
    if args.members.is_empty() {
        return Err(ToolError::bad_args("`members` is empty")
            .hint("list the members to remove; `groups` shows the room's members"));
    }
    let ids = resolve_members(shared, &args.members)?;
    let (g, removed) = shared.user.groups().remove(&g.id, &ids)?;
    if removed == 0 {
        return Err(ToolError::new(
            "not_a_member",
            format!(
                "none of those are members of '{}'",
                crate::error::one_line(&g.name)
            ),
        )
        .hint("`groups` {group} lists the room's members"));
    }
    Ok(Out {
        group: GroupOut::new(shared, &g),
        removed,
    })
}
