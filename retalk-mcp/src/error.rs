//! Tool errors: what went wrong and what to do about it, as a tool result
//! with `isError: true` (never a protocol error: the agent reads it, and the
//! server goes on serving).

use retalk::proto::WireError;
use retalk::ClientError;
use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;

/// A failed tool call, shown to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolError {
    /// What failed (one line; never message text, passphrases or keys).
    pub error: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// A short stable code an agent may branch on: `bad_arguments`,
    /// `unknown_peer`, `unknown_group`, `not_a_member`, `not_delivered`,
    /// `pin_mismatch`, `relay_unreachable`, `relay_refused`, `no_relay`,
    /// `kept_for_resend`, `name_taken`, `cancelled`, `store`, `failed`.
    pub code: &'static str,
}

impl ToolError {
    /// An error with a code and no hint yet.
    pub fn new(code: &'static str, error: impl Into<String>) -> Self {
        ToolError {
            error: one_line(&error.into()),
            hint: None,
            code,
        }
    }

    /// Bad arguments.
    pub fn bad_args(error: impl Into<String>) -> Self {
        Self::new("bad_arguments", error)
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl From<ToolError> for CallToolResult {
    fn from(e: ToolError) -> Self {
        let value = serde_json::to_value(&e).unwrap_or_default();
        let mut r = CallToolResult::structured_error(value);
        // The text block is for people and hosts that show only text.
        r.content = vec![ContentBlock::text(e.to_string())];
        r
    }
}

/// Control characters (and the invisible direction overrides) become
/// spaces: relay-chosen text must not steer a terminal or a log.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi {
                ' '
            } else {
                c
            }
        })
        .collect()
}

impl From<ClientError> for ToolError {
    fn from(e: ClientError) -> Self {
        let text = e.to_string();
        match &e {
            ClientError::UnknownPeer(_) => ToolError::new("unknown_peer", text).hint(
                "save the peer first with the `add` tool (their fingerprint and a name), \
                 or pass their 32-hex user id; `contacts` lists the names saved",
            ),
            ClientError::UnknownGroup(_) => ToolError::new("unknown_group", text)
                .hint("`groups` lists your rooms (by label and id); `group_create` makes one"),
            ClientError::PinMismatch { .. } => ToolError::new("pin_mismatch", text).hint(
                "do not retry and do not trust this peer's keys: the relay served keys that \
                 are not this contact's. Ask the person, over another channel, to compare \
                 their fingerprint (`id`) with the one saved (`contacts`)",
            ),
            ClientError::NameTaken { .. } => ToolError::new("name_taken", text).hint(
                "choose another name; this server never re-points a saved name (a person \
                 can, with `retalk add ID --peer NAME --override`)",
            ),
            ClientError::SelfSend(_) => ToolError::new("bad_arguments", text)
                .hint("send to another identity's fingerprint or saved name"),
            ClientError::NoRelay => ToolError::new("no_relay", text).hint(
                "the person running the server must pass --relay URL, set RETALK_RELAY, or \
                 save one with `retalk config --relay URL`",
            ),
            ClientError::Unreachable(_) => ToolError::new("relay_unreachable", text).hint(
                "the relay is down or unreachable; try again later (nothing was lost: \
                 unsent messages are not recorded as sent, mail waits on the relay)",
            ),
            ClientError::KeptForResend { .. } => ToolError::new("kept_for_resend", text).hint(
                "the relay does not know the recipient yet; the message stays in the \
                 outbox and is re-sent by `sync` or by this server's upkeep",
            ),
            ClientError::InvalidArgument(_) => ToolError::new("bad_arguments", text)
                .hint("check the arguments against the tool's input schema (tools/list)"),
            ClientError::Relay { error, .. } => relay_refused(error),
            ClientError::BadResponse { .. } => ToolError::new("relay_refused", text)
                .hint("the relay URL may not point at a retalk relay"),
            ClientError::Store(_) => ToolError::new("store", text)
                .hint("the identity's local store failed; see the server's log on stderr"),
            _ => ToolError::new("failed", text)
                .hint("see the server's log on stderr; other tools still work"),
        }
    }
}

fn relay_refused(error: &WireError) -> ToolError {
    let reason = one_line(&error.to_string());
    match error {
        WireError::NotFound(_) => ToolError::new(
            "relay_refused",
            format!("the relay does not know this user ({reason})"),
        )
        .hint("the peer has not published keys yet; check the fingerprint, or ask them to start retalk once"),
        WireError::TooLarge(_) => ToolError::new(
            "bad_arguments",
            format!("the message is too large for this relay ({reason})"),
        )
        .hint("send a shorter text, or split it into several messages"),
        WireError::LimitExceeded(_) | WireError::Unavailable(_) => {
            ToolError::new("relay_unreachable", format!("the relay is busy ({reason})"))
                .hint("try again in a little while")
        }
        _ => ToolError::new("relay_refused", format!("the relay refused: {reason}"))
            .hint("check the arguments; if it persists, the relay's operator can tell why"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use retalk::UserId;

    fn id() -> UserId {
        UserId::parse("0123456789abcdef0123456789abcdef", "id").unwrap()
    }

    #[test]
    fn library_errors_become_tool_errors_with_codes_and_hints() {
        let cases = [
            (ClientError::UnknownPeer("carol".into()), "unknown_peer"),
            (
                ClientError::PinMismatch {
                    peer: id(),
                    detail: "the keys hash to something else".into(),
                },
                "pin_mismatch",
            ),
            (
                ClientError::Unreachable("connection refused".into()),
                "relay_unreachable",
            ),
            (ClientError::NoRelay, "no_relay"),
            (ClientError::UnknownGroup("team".into()), "unknown_group"),
            (ClientError::SelfSend(id()), "bad_arguments"),
            (
                ClientError::Relay {
                    tool: "send_message",
                    error: WireError::TooLarge("body too large".into()),
                },
                "bad_arguments",
            ),
            (
                ClientError::Relay {
                    tool: "get_keys",
                    error: WireError::NotFound("no such user".into()),
                },
                "relay_refused",
            ),
            (
                ClientError::KeptForResend {
                    id: "ab".repeat(16),
                    reason: "unknown recipient".into(),
                },
                "kept_for_resend",
            ),
        ];
        for (e, code) in cases {
            let t = ToolError::from(e.clone());
            assert_eq!(t.code, code, "{e:?}");
            assert!(
                t.hint.as_deref().is_some_and(|h| h.len() > 20),
                "{e:?}: {t:?}"
            );
        }
        let pin = ToolError::from(ClientError::PinMismatch {
            peer: id(),
            detail: "x".into(),
        });
        assert!(pin.error.contains("PIN MISMATCH"), "{pin:?}");
    }

    #[test]
    fn a_tool_error_is_an_error_result_with_structured_content() {
        let r =
            CallToolResult::from(ToolError::bad_args("`text` is empty").hint("write something"));
        assert_eq!(r.is_error, Some(true));
        let sc = r.structured_content.unwrap();
        assert_eq!(sc["code"], "bad_arguments");
        assert_eq!(sc["hint"], "write something");
        let text = r.content[0].as_text().unwrap().text.clone();
        assert!(
            text.contains("`text` is empty") && text.contains("write something"),
            "{text}"
        );
    }

    #[test]
    fn relay_text_cannot_steer_a_terminal() {
        let t = ToolError::new("failed", "bad\u{1b}[2Jthing\u{202e}\nnext");
        assert!(
            !t.error.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{t:?}"
        );
    }
}
