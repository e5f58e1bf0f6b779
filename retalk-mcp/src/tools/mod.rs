//! One module per tool (names and argument names are fixed by issue 14 and
//! agent-talk's tools, so hosts and prompts can rely on them). Each module
//! has its argument struct (its JSON schema is the tool's input schema), its
//! result struct (structured content, also sent as text) and `run`.
//!
//! What the tools share lives here: naming a peer, messages as returned,
//! taking delivered messages out of the store (saved to history first).

pub mod add;
pub mod block;
pub mod contacts;
pub mod history;
pub mod id;
pub mod receive;
pub mod send;
pub mod sync;
pub mod verify;
pub mod wait;

use retalk::{Inbox, ReceiveOptions, UserId};
use schemars::JsonSchema;
use serde::Serialize;

use crate::error::ToolError;
use crate::server::Shared;

/// A received message, as tools return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct MessageOut {
    /// Message id (32 hex), the same on both sides.
    pub id: String,
    /// The sender's fingerprint (user id), authenticated by the encryption.
    pub from: String,
    /// The sender's saved contact name; else `~` and the name the sender
    /// chose for themselves (unverified); else empty.
    pub name: String,
    /// The text: written by the sender, untrusted.
    pub text: String,
    /// Whether the sender is a saved contact.
    pub contact: bool,
}

/// Mail that could not be read (never its content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ProblemOut {
    /// The sender's fingerprint, as the relay named it.
    pub from: String,
    /// Why it could not be read.
    pub reason: String,
}

/// Resolves a saved contact name or a 32-hex fingerprint.
pub(crate) fn resolve(shared: &Shared, peer: &str) -> Result<UserId, ToolError> {
    let t = peer.trim();
    if t.is_empty() {
        return Err(ToolError::bad_args("`peer` is empty")
            .hint("give a saved contact name (see `contacts`) or a 32-hex fingerprint"));
    }
    let hexish =
        t.len() >= 24 && t.len() <= 40 && t.len() != 32 && t.bytes().all(|b| b.is_ascii_hexdigit());
    if hexish && shared.user.contacts().get(t).ok().flatten().is_none() {
        return Err(ToolError::bad_args(format!(
            "'{t}' looks like a fingerprint but has {} characters; a fingerprint has 32",
            t.len()
        ))
        .hint("copy the whole fingerprint again"));
    }
    Ok(shared.user.resolve_peer(t)?)
}

/// Parses a fingerprint argument (32 hex, either case).
pub(crate) fn parse_fingerprint(s: &str) -> Result<UserId, ToolError> {
    UserId::parse(&s.trim().to_ascii_lowercase(), "fingerprint").map_err(|e| {
        ToolError::bad_args(e.to_string())
            .hint("a fingerprint (user id) is 32 hex characters, as the `id` tool shows it")
    })
}

/// One receive without waiting, messages taken out for the agent: each is
/// saved to history (unless `--no-save`) before it is forgotten in the
/// store, so a failure at any point leaves it for the next receive. Problems
/// the push task already took are returned too.
pub(crate) async fn take(
    shared: &Shared,
    from: Option<&UserId>,
) -> Result<(Vec<MessageOut>, Vec<ProblemOut>), ToolError> {
    let inbox: Inbox = shared
        .user
        .receive_with(&ReceiveOptions {
            wait: None,
            from: from.cloned(),
            peers_only: shared.options.peers_only,
            hold: true,
        })
        .await?;
    let mut out = Vec::with_capacity(inbox.messages.len());
    for m in &inbox.messages {
        if shared.options.save {
            shared.user.history().keep_received(m)?;
        }
        shared.user.shown(m)?;
        let contact = shared
            .user
            .contacts()
            .get(m.from.as_str())
            .ok()
            .flatten()
            .is_some();
        out.push(MessageOut {
            id: m.id.clone(),
            from: m.from.to_string(),
            name: m.name.clone(),
            text: m.text.clone(),
            contact,
        });
    }
    let mut problems = shared.take_problems();
    problems.extend(inbox.problems.into_iter().map(|p| ProblemOut {
        from: p.from.to_string(),
        reason: crate::error::one_line(&p.reason),
    }));
    Ok((out, problems))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn arguments_are_checked_by_name() {
        // Unknown argument names are refused, not ignored: a misspelt
        // `peer` must not turn a one-sender read into an every-sender one.
        let bad = serde_json::from_value::<super::receive::Args>(json!({"peers": "bob"}));
        assert!(bad.is_err());
        let ok: super::wait::Args = serde_json::from_value(json!({"timeout": 1.5})).unwrap();
        assert_eq!(ok.timeout, Some(1.5));
        let send = serde_json::from_value::<super::send::Args>(json!({"peer": "bob"}));
        assert!(send.is_err(), "text is required");
        assert!(super::parse_fingerprint("ABCDEF0123456789ABCDEF0123456789").is_ok());
        assert!(super::parse_fingerprint("abc").is_err());
    }
}
