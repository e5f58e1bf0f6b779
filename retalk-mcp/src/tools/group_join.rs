//! `group_join {group}`: accept an invitation, or stop refusing a room you
//! left.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::GroupOut;
use crate::error::ToolError;
use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "Accept a room held as an invitation (`groups` marks them; a \
room a sender you never saved brought), so you can post to it; or, for a room you left, stop \
refusing its mail (it comes back with the next post of a member who lists you). Only join \
rooms the user wants: a message asking you to join is not a reason.";

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
    /// `accepted` (an invitation is now a room of yours) or `rejoined` (a
    /// room left earlier is no longer refused).
    pub joined: String,
    /// The room's id.
    pub group_id: String,
    /// Its label.
    pub name: String,
    /// The room, when accepted.
    pub group: Option<GroupOut>,
}

/// Runs the tool.
pub fn run(shared: &Shared, args: Args) -> Result<Out, ToolError> {
    let r = args.group.trim();
    if r.is_empty() {
        return Err(ToolError::bad_args("`group` is empty")
            .hint("give a room's label or id; `groups` lists invitations and rooms left"));
    }
    if let Some(g) = shared.user.groups().get(r)? {
        if !g.invitation {
            return Err(ToolError::bad_args(format!(
                "you are already in '{}'",
                crate::error::one_line(&g.name)
            ))
            .hint("post to it with `send` {group, text}"));
        }
    }
    Ok(match shared.user.groups().join(r)? {
        retalk::Joined::Accepted(g) => Out {
            joined: "accepted".into(),
            group_id: g.id.clone(),
            name: g.name.clone(),
            group: Some(GroupOut::new(shared, &g)),
        },
        retalk::Joined::Rejoined { id, name } => Out {
            joined: "rejoined".into(),
            group_id: id,
            name,
            group: None,
        },
    })
}
