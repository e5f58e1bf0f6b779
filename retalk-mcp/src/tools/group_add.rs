//! `group_add {group, members}`: add members to a room.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{find_group, resolve_members, GroupOut};
use crate::error::ToolError;
use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "Add members to a room (saved contact names or fingerprints). \
They, and the other members, learn the new roster with your next `send` to the room (the \
others' clients show the addition). A member removed earlier is re-admitted. Only add people \
you mean to: everyone in the room reads every post.";

/// Arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The room: its label or id.
    pub group: String,
    /// The members to add: saved contact names or fingerprints.
    pub members: Vec<String>,
}

/// The result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Out {
    /// The room now.
    pub group: GroupOut,
    /// How many were new (members already in it are not counted).
    pub added: usize,
}

/// Runs the tool.
pub async fn run(shared: &Shared, args: Args) -> Result<Out, ToolError> {
    let g = find_group(shared, &args.group)?;
    if args.members.is_empty() {
        return Err(ToolError::bad_args("`members` is empty")
            .hint("list saved contact names (see `contacts`) or fingerprints to add"));
    }
    let ids = resolve_members(shared, &args.members)?;
    let (g, added) = shared.user.groups().add(&g.id, &ids).await?;
    Ok(Out {
        group: GroupOut::new(shared, &g),
        added,
    })
}
