//! `group_delete {group}`: forget a room locally.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{find_group, GroupOut};
use crate::error::ToolError;
use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "Forget a room locally, telling no one: the members keep theirs, \
and a later post from one of them brings it back (as a new room, or an invitation). Its kept \
messages stay in `history` (unfiltered). To stop getting its posts, use `group_leave` instead.";

/// Arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The room: its label or id.
    pub group: String,
}

/// The result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Out {
    /// The room as it was.
    pub deleted: GroupOut,
}

/// Runs the tool.
pub fn run(shared: &Shared, args: Args) -> Result<Out, ToolError> {
    let g = find_group(shared, &args.group)?;
    let deleted = GroupOut::new(shared, &g);
    shared.user.groups().delete(&g.id)?;
    Ok(Out { deleted })
}
