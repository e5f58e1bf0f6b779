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
        Format::Json => json_line(m),
        Format::Plain => {
            let who = if m.name.is_empty() { &m.from } else { &m.name };
            format!("{}: {}", one_line(who), one_line(&m.text))
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
        Received {
            id: "0123456789abcdef0123456789abcdef".into(),
            from: "f1041c25c87351d8550b31cc6b13ab04".into(),
            name: name.into(),
            text: text.into(),
        }
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
