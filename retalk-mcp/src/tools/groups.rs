//! `groups {group?}`: the rooms (groups) of this identity, invitations
//! held, rooms left, and which new rooms are adopted at once.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{find_group, GroupOut};
use crate::error::ToolError;
use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "List your rooms (groups): each with its id, your label, its \
members (fingerprints and your saved names for them) and whether it is an invitation (a room a \
sender you never saved brought: you see its posts but must accept it with `group_join` before \
posting). Also lists rooms you left (their mail is refused) and the adoption policy. With \
group, only that room. Post to a room with `send` {group, text}; read its thread with \
`history` {group}.";

/// Arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Only this room: its label or id.
    #[serde(default)]
    pub group: Option<String>,
}

/// A room you left.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LeftOut {
    /// The room's id.
    pub group_id: String,
    /// Its label when you left.
    pub name: String,
}

/// The result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Out {
    /// Rooms (invitations included), by label.
    pub groups: Vec<GroupOut>,
    /// Rooms you left: their mail is refused until `group_join`.
    pub left: Vec<LeftOut>,
    /// Which new rooms are adopted at once: `contacts` (rooms saved contacts
    /// bring; the rest are invitations), `anyone` or `nobody`. Set by the
    /// person running the server (`retalk group policy`), not by a tool.
    pub policy: String,
}

/// Runs the tool.
pub fn run(shared: &Shared, args: Args) -> Result<Out, ToolError> {
    let groups = shared.user.groups();
    let policy = shared
        .user
        .setting(retalk::ADOPT_SETTING)?
        .and_then(|v| retalk::AdoptPolicy::parse(&v))
        .unwrap_or_default()
        .as_str()
        .to_owned();
    if let Some(g) = &args.group {
        let found = find_group(shared, g)?;
        return Ok(Out {
            groups: vec![GroupOut::new(shared, &found)],
            left: vec![],
            policy,
        });
    }
    Ok(Out {
        groups: groups
            .list()?
            .iter()
            .map(|g| GroupOut::new(shared, g))
            .collect(),
        left: groups
            .left()?
            .into_iter()
            .map(|(group_id, name)| LeftOut { group_id, name })
            .collect(),
        policy,
    })
}
