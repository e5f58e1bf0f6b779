//! `group_leave {group}`: leave a room, telling its members.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{find_group, member_out, MemberOut};
use crate::error::ToolError;
use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "Leave a room: every member is told (an encrypted leave notice), \
the room is forgotten, and its later posts are refused until `group_join` lifts the refusal. \
Declining an invitation is leaving it too (no one is told).";

/// Arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The room: its label or id.
    pub group: String,
}

/// A member not told.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NotTold {
    /// The member's fingerprint.
    pub fingerprint: String,
    /// Why (their later posts are refused anyway).
    pub reason: String,
}

/// The result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Out {
    /// The room's id.
    pub group_id: String,
    /// Its label.
    pub name: String,
    /// Members told.
    pub told: Vec<MemberOut>,
    /// Members the notice did not reach.
    pub not_told: Vec<NotTold>,
}

/// Runs the tool.
pub async fn run(shared: &Shared, args: Args) -> Result<Out, ToolError> {
    let g = find_group(shared, &args.group)?;
    let l = shared.user.groups().leave(&g.id).await?;
    Ok(Out {
        group_id: l.id,
        name: l.name,
        told: l.told.iter().map(|m| member_out(shared, m)).collect(),
        not_told: l
            .failed
            .into_iter()
            .map(|(m, reason)| NotTold {
                fingerprint: m.to_string(),
                reason: crate::error::one_line(&reason),
            })
            .collect(),
    })
}
