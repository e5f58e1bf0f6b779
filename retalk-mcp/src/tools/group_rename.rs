//! `group_rename {group, name}`: change your label for a room.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{find_group, GroupOut};
use crate::error::ToolError;
use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "Change your local label for a room. Only yours: the room's id \
stays, the members keep their own labels, and its history follows the room (by id).";

/// Arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The room: its label or id.
    pub group: String,
    /// The new label (not a fingerprint; unique among your rooms).
    pub name: String,
}

/// The result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Out {
    /// The room, under its new label.
    pub group: GroupOut,
    /// The label it had.
    pub old_name: String,
}

/// Runs the tool.
pub fn run(shared: &Shared, args: Args) -> Result<Out, ToolError> {
    let g = find_group(shared, &args.group)?;
    let name = args.name.trim();
    if name.is_empty() {
        return Err(ToolError::bad_args("`name` is empty").hint("give the new label"));
    }
    let renamed = shared.user.groups().rename(&g.id, name)?;
    Ok(Out {
        group: GroupOut::new(shared, &renamed),
        old_name: g.name,
    })
}
