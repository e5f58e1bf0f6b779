//! What goes to stdout, and how.
//!
//! stdout carries only data: ids, messages, JSON lines. Each line is flushed
//! as soon as it is written, so a pipe (`retalk receive --follow --json | jq`)
//! sees every message the moment it is decrypted. Everything for people
//! (banners, progress, warnings, errors) goes to stderr.

use crate::error::CliError;
use serde::Serialize;
use std::io::{self, Write};

/// One decrypted message, as the CLI prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Received {
    /// The message id chosen by the sender (32 hex).
    pub id: String,
    /// The sender's user id.
    pub from: String,
    /// Display name: saved peer name, else `~selfname`, else "".
    pub name: String,
    /// The plaintext.
    pub text: String,
    /// A group post's room: (id, local label).
    #[serde(skip)]
    pub group: Option<(String, String)>,
    /// A notice (group and invite events) instead of chat.
    #[serde(skip)]
    pub notice: Option<serde_json::Value>,
}

impl Received {
    /// A chat message (no group, no notice).
    pub fn chat(id: String, from: String, name: String, text: String) -> Received {
        Received {
            id,
            from,
            name,
            text,
            group: None,
            notice: None,
        }
    }

    /// The JSON line, in retalk 0.3.0's shapes: a chat message
    /// `{"id","from","name","text"}` (a group post adds `"group"` and
    /// `"group_id"`); `group_leave` `{"id","from","name","kind","group_id"}`;
    /// `contact` (a shared card) `{"id","from","name","kind","card"}`;
    /// `contact_accepted` `{"kind","code","from","name","card"}`;
    /// `contact_request_rejected` `{"kind","from","reason"}`; and ours,
    /// `group_members` / `group_invitation`: `{"kind","from","name",
    /// "group","group_id", ...}`.
    pub fn to_json(&self) -> Ordered {
        use serde_json::Value;
        let s = |v: &str| Value::String(v.to_owned());
        let Some(Value::Object(n)) = &self.notice else {
            let mut m = Ordered::default()
                .with("id", s(&self.id))
                .with("from", s(&self.from))
                .with("name", s(&self.name))
                .with("text", s(&self.text));
            if let Some((gid, label)) = &self.group {
                m = m.with("group", s(label)).with("group_id", s(gid));
            }
            return m;
        };
        let get = |k: &str| n.get(k).cloned().unwrap_or(Value::Null);
        match n.get("kind").and_then(Value::as_str).unwrap_or("") {
            "group_leave" => Ordered::default()
                .with("id", s(&self.id))
                .with("from", s(&self.from))
                .with("name", s(&self.name))
                .with("kind", s("group_leave"))
                .with("group_id", get("group_id")),
            "contact" => Ordered::default()
                .with("id", s(&self.id))
                .with("from", s(&self.from))
                .with("name", s(&self.name))
                .with("kind", s("contact"))
                .with("card", get("card")),
            "contact_accepted" => Ordered::default()
                .with("kind", s("contact_accepted"))
                .with("code", get("code"))
                .with("from", s(&self.from))
                .with("name", get("name"))
                .with("card", get("card")),
            "contact_request_rejected" => Ordered::default()
                .with("kind", s("contact_request_rejected"))
                .with("from", s(&self.from))
                .with("reason", get("reason")),
            _ => {
                let mut m = Ordered::default()
                    .with("kind", get("kind"))
                    .with("from", s(&self.from))
                    .with("name", s(&self.name));
                for k in ["group", "group_id", "added", "removed", "members"] {
                    if let Some(v) = n.get(k) {
                        m = m.with(k, v.clone());
                    }
                }
                m
            }
        }
    }

    /// The plain line for a notice.
    fn notice_line(&self, n: &serde_json::Value) -> String {
        let who = if self.name.is_empty() {
            &self.from
        } else {
            &self.name
        };
        let s = |k: &str| n.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
        let list = |k: &str| {
            n.get(k)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        let group = one_line(&s("group"));
        let text = match s("kind").as_str() {
            "group_leave" => format!("left group {}", if group.is_empty() { s("group_id") } else { group }),
            "group_invitation" => format!(
                "invites you to group {group} (members: {}); accept with `retalk group join {group}`",
                list("members")
            ),
            "group_members" => format!(
                "changed group {group}: added [{}], removed [{}]",
                list("added"),
                list("removed")
            ),
            "contact" => {
                let card = n.get("card");
                let f = |k: &str| {
                    card.and_then(|c| c.get(k))
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_owned()
                };
                format!(
                    "shares a contact: {} ({}); save it with `retalk import --inbox`",
                    one_line(&f("name")),
                    one_line(&f("fingerprint"))
                )
            }
            "contact_accepted" => format!("redeemed an invite code; saved as {}", one_line(&s("name"))),
            "contact_request_rejected" => format!("contact request refused ({})", s("reason")),
            other => format!("sent a {} record", one_line(other)),
        };
        format!("* {}: {text}", one_line(who))
    }
}

/// A JSON object whose keys print in the order given (serde_json's own map
/// sorts them; 0.3.0 prints in insertion order).
#[derive(Debug, Clone, Default)]
pub struct Ordered(Vec<(&'static str, serde_json::Value)>);

impl Ordered {
    /// Adds a key.
    pub fn with(mut self, k: &'static str, v: serde_json::Value) -> Self {
        self.0.push((k, v));
        self
    }
}

impl Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = ser.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Something that arrived but could not be shown (undecryptable, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The sender's user id as the relay reported it.
    pub from: String,
    /// Why.
    pub reason: String,
}

/// The result of one mailbox read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Messages, in arrival order.
    pub messages: Vec<Received>,
    /// Deliveries that failed.
    pub problems: Vec<Problem>,
}

/// `receive` output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `name-or-id: text`, one line per message.
    Plain,
    /// One JSON object per line: `{"id","from","name","text"}`.
    Json,
}

/// Renders text for a terminal line: control characters (newlines, escape
/// sequences, ...) and invisible direction overrides are shown escaped, so a
/// message is always exactly one line and cannot repaint the terminal or
/// impersonate another sender's line. `--json` carries the exact text.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The line `receive` prints for a message.
pub fn format_message(m: &Received, format: Format) -> String {
    match format {
        Format::Json => json_line(&m.to_json()),
        Format::Plain => {
            if let Some(n) = &m.notice {
                return m.notice_line(n);
            }
            let who = if m.name.is_empty() { &m.from } else { &m.name };
            match &m.group {
                Some((_, label)) => format!(
                    "{} [{}]: {}",
                    one_line(who),
                    one_line(label),
                    one_line(&m.text)
                ),
                None => format!("{}: {}", one_line(who), one_line(&m.text)),
            }
        }
    }
}

/// Serializes a value as one compact JSON line (field order as declared).
pub fn json_line<T: Serialize>(v: &T) -> String {
    // Serializing plain structs of strings cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "{}".to_string())
}

/// `send --json` receipt.
#[derive(Debug, Serialize)]
pub struct Receipt<'a> {
    /// The message id.
    pub id: &'a str,
    /// The recipient's user id.
    pub to: &'a str,
}

/// `id --json` output.
#[derive(Debug, Serialize)]
pub struct IdentityJson<'a> {
    /// The user id.
    pub user_id: &'a str,
    /// Curve25519 public key, base64.
    pub identity_key: &'a str,
    /// Ed25519 public key, base64.
    pub signing_key: &'a str,
    /// Self-chosen display name ("" if none).
    pub name: &'a str,
}

/// A contact card (0.3's STANDARD field order); also `id --json` in the 0.3
/// dialect, with `relay` and `user_id`.
#[derive(Debug, Serialize)]
pub struct Card<'a> {
    /// The user id.
    pub fingerprint: &'a str,
    /// The (recommended) name; "" if none.
    pub name: &'a str,
    /// Curve25519 public key, base64; "" if not verified.
    pub identity_key: &'a str,
    /// Ed25519 public key, base64; "" if not verified.
    pub signing_key: &'a str,
    /// Both keys checked against the fingerprint.
    pub verified: bool,
    /// Where to reach this user (own card only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<&'a str>,
    /// The user id again, under 0.0.1's name (own card only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<&'a str>,
}

/// A `history` line.
#[derive(Debug, Serialize)]
pub struct HistoryLine<'a> {
    /// Message id.
    pub id: &'a str,
    /// Sender id.
    pub from: &'a str,
    /// Sender name.
    pub name: &'a str,
    /// "in" or "out".
    pub direction: &'a str,
    /// Text.
    pub text: &'a str,
}

/// The stderr banner naming the identity that acts.
pub fn banner(name: &str, id: &str, dir: &std::path::Path) -> String {
    let who = if name.is_empty() {
        "(unnamed)".to_string()
    } else {
        one_line(name)
    };
    format!("using {who} ({id}) from {}", dir.display())
}

/// A line-at-a-time writer for stdout that flushes every line and turns a
/// closed pipe into a clean error.
pub struct Lines<W: Write> {
    w: W,
}

impl Lines<io::Stdout> {
    /// Lines on the process's stdout.
    pub fn stdout() -> Self {
        Self { w: io::stdout() }
    }
}

impl<W: Write> Lines<W> {
    /// Lines on any writer (tests).
    #[cfg(test)]
    pub fn new(w: W) -> Self {
        Self { w }
    }

    /// Writes one line and flushes it.
    pub fn line(&mut self, s: &str) -> Result<(), CliError> {
        let r = self
            .w
            .write_all(s.as_bytes())
            .and_then(|_| self.w.write_all(b"\n"))
            .and_then(|_| self.w.flush());
        r.map_err(|e| {
            if e.kind() == io::ErrorKind::BrokenPipe {
                CliError::failure("stdout was closed (broken pipe); stopped")
            } else {
                CliError::failure(format!("cannot write to stdout: {e}"))
            }
        })
    }

    /// The underlying writer.
    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.w
    }
}

/// Writes bytes to stdout (completion scripts, the manual page).
pub fn write_all_stdout(b: &[u8]) -> Result<(), CliError> {
    let mut o = io::stdout().lock();
    o.write_all(b)
        .and_then(|_| o.flush())
        .map_err(|e| CliError::failure(format!("cannot write to stdout: {e}")))
}

/// Writes lines to stderr, each neutralised with [`one_line`] (a relay's
/// or a peer's text inside a note cannot move the cursor, repaint the
/// terminal or reverse the line). Errors are ignored: there is nowhere
/// left to report them.
pub fn note(s: &str) {
    let mut e = io::stderr().lock();
    for line in s.split('\n') {
        let _ = writeln!(e, "{}", one_line(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(name: &str, text: &str) -> Received {
        Received::chat(
            "0123456789abcdef0123456789abcdef".into(),
            "f1041c25c87351d8550b31cc6b13ab04".into(),
            name.into(),
            text.into(),
        )
    }

    /// The top-level keys of a JSON line, in the order printed.
    fn keys(line: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let mut ks: Vec<(usize, String)> = v
            .as_object()
            .unwrap()
            .keys()
            .map(|k| (line.find(&format!("\"{k}\":")).unwrap(), k.clone()))
            .collect();
        ks.sort();
        ks.into_iter().map(|(_, k)| k).collect()
    }

    #[test]
    fn group_posts_and_notices_print_in_030_shapes() {
        let mut m = msg("bob", "hi");
        m.group = Some(("a".repeat(32), "team".into()));
        assert_eq!(
            keys(&format_message(&m, Format::Json)),
            ["id", "from", "name", "text", "group", "group_id"]
        );
        assert_eq!(format_message(&m, Format::Plain), "bob [team]: hi");
        m.group = None;
        m.notice =
            Some(serde_json::json!({"kind": "group_leave", "group_id": "g", "group": "t\u{1b}"}));
        assert_eq!(
            keys(&format_message(&m, Format::Json)),
            ["id", "from", "name", "kind", "group_id"]
        );
        assert!(!format_message(&m, Format::Plain).contains('\u{1b}'));
        m.notice =
            Some(serde_json::json!({"kind": "contact_request_rejected", "reason": "revoked"}));
        assert_eq!(
            keys(&format_message(&m, Format::Json)),
            ["kind", "from", "reason"]
        );
    }

    #[test]
    fn plain_lines_use_the_name_else_the_id() {
        assert_eq!(
            format_message(&msg("alice", "hello bob"), Format::Plain),
            "alice: hello bob"
        );
        assert_eq!(format_message(&msg("~al", "x"), Format::Plain), "~al: x");
        assert_eq!(
            format_message(&msg("", "x"), Format::Plain),
            "f1041c25c87351d8550b31cc6b13ab04: x"
        );
    }

    #[test]
    fn plain_lines_cannot_span_lines_or_smuggle_escapes() {
        let line = format_message(
            &msg("~a\nbob", "hi\nbob: fake\x1b[2J\u{202e}"),
            Format::Plain,
        );
        assert!(!line.contains('\n'));
        assert!(!line.contains('\x1b'));
        assert!(!line.contains('\u{202e}'));
        assert_eq!(line, r"~a\nbob: hi\nbob: fake\u{1b}[2J\u{202e}");
        assert_eq!(one_line("héllo ✓ 日本"), "héllo ✓ 日本");
    }

    #[test]
    fn json_lines_keep_field_order_and_exact_text() {
        let line = format_message(&msg("~al", "a\nb \"q\""), Format::Json);
        assert_eq!(
            line,
            r#"{"id":"0123456789abcdef0123456789abcdef","from":"f1041c25c87351d8550b31cc6b13ab04","name":"~al","text":"a\nb \"q\""}"#
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["text"], "a\nb \"q\"");
        assert_eq!(
            json_line(&Receipt { id: "i", to: "t" }),
            r#"{"id":"i","to":"t"}"#
        );
        assert_eq!(
            json_line(&IdentityJson {
                user_id: "u",
                identity_key: "k",
                signing_key: "s",
                name: ""
            }),
            r#"{"user_id":"u","identity_key":"k","signing_key":"s","name":""}"#
        );
    }

    #[test]
    fn banner_names_the_identity() {
        assert_eq!(
            banner("alice", "abc", std::path::Path::new("./alice")),
            "using alice (abc) from ./alice"
        );
        assert_eq!(
            banner("", "abc", std::path::Path::new("/x")),
            "using (unnamed) (abc) from /x"
        );
    }

    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Counting {
        data: Vec<u8>,
        flushes: usize,
    }
    impl Write for Counting {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.data.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.flushes += 1;
            Ok(())
        }
    }

    #[test]
    fn every_line_is_flushed_and_a_closed_pipe_is_an_error() {
        let mut l = Lines::new(Counting {
            data: vec![],
            flushes: 0,
        });
        l.line("a").unwrap();
        l.line("b").unwrap();
        let c = l.into_inner();
        assert_eq!(c.data, b"a\nb\n");
        assert_eq!(c.flushes, 2);
        let e = Lines::new(Closed).line("x").unwrap_err();
        assert!(e.message.contains("broken pipe"));
        assert_eq!(e.exit_code(), 1);
    }
}
