//! `sync {}`: key upkeep and re-sending, now.

use std::time::Duration;

use retalk::MaintainOptions;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ToolError;
use crate::server::Shared;

/// What the tool says about itself.
pub const DESCRIPTION: &str = "Run upkeep now: make sure the relay has this identity's keys \
(republishing them if it lost them), top up one-time keys, rotate an old fallback key, and \
re-send every message the recipient has not acknowledged yet. The server also does this by \
itself every minute.";

/// No arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {}

/// What was done.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Out {
    /// Unclaimed one-time keys on the relay before any publishing.
    pub unclaimed: u64,
    /// The relay had forgotten this identity: everything was published again.
    pub republished: bool,
    /// A batch of one-time keys was published.
    pub replenished: bool,
    /// A new fallback key was published.
    pub fallback_rotated: bool,
    /// Unacknowledged messages re-sent.
    pub resent: usize,
}

/// Runs the tool.
pub async fn run(shared: &Shared, _args: Args) -> Result<Out, ToolError> {
    let republished = shared.user.ensure_published().await?;
    let r = shared
        .user
        .maintain(MaintainOptions {
            resend_after: Duration::ZERO,
            ..MaintainOptions::default()
        })
        .await?;
    Ok(Out {
        unclaimed: r.unclaimed,
        republished: republished || r.republished,
        replenished: republished || r.replenished,
        fallback_rotated: republished || r.fallback_rotated,
        resent: r.resent,
    })
}
