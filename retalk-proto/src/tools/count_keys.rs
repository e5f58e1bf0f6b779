//! `count_keys`: how many of the caller's one-time keys are still
//! unclaimed, and whether a fallback key is on file, so the caller knows when
//! to replenish or rotate (and whether a relay has forgotten it entirely).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Args, Tool};
use crate::error::WireError;

/// The request; it has no arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CountKeys;

/// The caller's key stock on the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCounts {
    /// One-time keys not yet handed out.
    pub unclaimed: u64,
    /// Whether a fallback key is on file.
    pub has_fallback: bool,
}

impl Tool for CountKeys {
    const NAME: &'static str = "count_keys";
    type Response = KeyCounts;

    fn from_args(args: &Map<String, Value>) -> Result<Self, WireError> {
        Args::new(Self::NAME, args, &[])?;
        Ok(CountKeys)
    }

    fn to_args(&self) -> Map<String, Value> {
        Map::new()
    }
}
