//! The command line: commands, flags and their help texts.

use crate::select::identity::{Selection, DEFAULT_USER};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// The part of every `--help` that explains identity, passphrase, relay,
/// output and exit codes. A macro so it can be `concat!`ed into literals.
#[macro_export]
macro_rules! common_help {
    () => {
        "\
Which identity acts (first match wins):
  1. -s, --store DIR        the identity in directory DIR (also --dir DIR)
  2. -u, --user-level [NAME]
                            the named identity NAME (default: `default`; also
                            --user NAME): $RETALK_HOME/NAME if RETALK_HOME is
                            set, else ~/.retalk/NAME or $XDG_DATA_HOME/retalk/NAME
                            (~/.local/share/retalk/NAME), whichever exists
  3. STORE=DIR              environment variable, same as -s
  4. RETALK_USER=NAME       environment variable, same as -u NAME
  5. the named `default` identity, if it exists
  Otherwise retalk stops (exit 2) and creates nothing: only `retalk init`
  creates identities.

Passphrase (decrypts the private keys; first match wins):
  -p SECRET, --no-passphrase (-np), --passphrase-file PATH (first line; also
  --passphrase-path), RETALK_PASSPHRASE_FILE, PICKLE_SECRET, RETALK_PASSPHRASE,
  then a prompt without echo if there is a terminal; with no terminal, exit 2.

Relay URL (first match wins):
  --server URL (also -r/--relay), then SERVER_URL, then RETALK_RELAY, then the
  URL saved by init or `retalk config --relay URL`. --api-key KEY or
  RETALK_API_KEY is sent as `Authorization: Bearer KEY`.

Output:
  stdout carries only data (ids, messages, JSON lines), flushed line by line;
  the `using NAME (ID) from DIR` banner, progress, warnings and errors go to
  stderr as `retalk: ...` lines. The 0.3 forms (send --peer, receive --peer/--all, contacts --json, history ...)
  print NDJSON as in retalk 0.3's STANDARD; the 0.0.1 forms keep their output.

Exit codes:
  0  success
  1  failure that may pass on retry: relay unreachable or failing, I/O error
  2  usage error or refusal: bad arguments, no identity, wrong passphrase,
     unknown peer, PIN MISMATCH, no relay URL
  3  the relay refused for good: wrong relay URL/audience, message too large,
     the peer has not published keys; retrying the same command will not help
"
    };
}

/// The short-help footer.
pub const SHORT_FOOTER: &str =
    "Run with --help for examples, where the identity comes from, and exit codes.";

/// retalk: end-to-end-encrypted messages through a relay you never trust.
#[derive(Debug, Parser)]
#[command(
    name = "retalk",
    version,
    about = "End-to-end-encrypted messages between agents, services and people, \
             through a relay that is never trusted",
    long_about = "\
End-to-end-encrypted messages between AI agents, services and people, through a
relay that is never trusted.

The relay stores public keys and ciphertext. It never sees message text,
private keys, or the names you give your peers; it does see who sends to whom,
when, and how much. Every request to it is signed with your key: there are no
accounts, passwords or tokens.

Your USER ID (32 hex characters) is a fingerprint of your public keys: your
address and the proof of your keys in one. Share it over a channel the relay
does not control (chat, email, in person); peers who know it detect any key
substitution and refuse with PIN MISMATCH.",
    after_help = SHORT_FOOTER,
    after_long_help = concat!(
        "\
Quick start:
  retalk init -u --name alice --server https://relay.example.com
  retalk add bob f1041c25c87351d8550b31cc6b13ab04
  retalk send bob \"hello\"
  retalk receive --follow

",
        common_help!(),
        "
Run `retalk <command> --help` for the details and examples of each command."
    ),
    arg_required_else_help = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Identity and relay options, accepted before or after any command.
    #[command(flatten)]
    pub global: Global,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command (both generations' spellings).
#[derive(Debug, Clone, Args, Default)]
#[command(next_help_heading = "Identity and relay")]
pub struct Global {
    /// Use the identity in directory DIR (made by `retalk init DIR`)
    #[arg(
        short = 's',
        long = "store",
        visible_alias = "dir",
        value_name = "DIR",
        global = true
    )]
    pub store: Option<PathBuf>,

    /// Use the named identity NAME: $RETALK_HOME/NAME, else ~/.retalk/NAME or
    /// $XDG_DATA_HOME/retalk/NAME, whichever exists (NAME defaults to `default`)
    #[arg(
        short = 'u',
        long = "user-level",
        visible_alias = "user",
        value_name = "NAME",
        num_args = 0..=1,
        default_missing_value = DEFAULT_USER,
        global = true
    )]
    pub user_level: Option<String>,

    /// Relay URL for this run; overrides SERVER_URL, RETALK_RELAY and the saved
    /// URL (init saves it; `retalk config --relay URL` changes it)
    #[arg(
        short = 'r',
        long = "server",
        visible_alias = "relay",
        value_name = "URL",
        global = true
    )]
    pub server: Option<String>,

    /// Read the passphrase from the first line of PATH (or RETALK_PASSPHRASE_FILE)
    /// instead of PICKLE_SECRET / RETALK_PASSPHRASE / the prompt
    #[arg(
        long = "passphrase-file",
        visible_alias = "passphrase-path",
        value_name = "PATH",
        global = true
    )]
    pub passphrase_file: Option<PathBuf>,

    /// The passphrase itself (visible to other local users in the process
    /// list: prefer --passphrase-file)
    #[arg(short = 'p', long = "passphrase", value_name = "SECRET", global = true)]
    pub passphrase: Option<String>,

    /// The identity has no passphrase (its keys are protected only by the
    /// folder's permissions); also spelled -np
    #[arg(long = "no-passphrase", global = true)]
    pub no_passphrase: bool,

    /// API key for relays that require one, sent as `Authorization: Bearer`
    /// (or RETALK_API_KEY)
    #[arg(long = "api-key", value_name = "KEY", global = true)]
    pub api_key: Option<String>,
}

impl Global {
    /// The identity-selection part.
    pub fn selection(&self) -> Selection {
        Selection {
            store: self.store.clone(),
            user_level: self.user_level.clone(),
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new identity (the only command that does) and print its id
    #[command(
        long_about = "\
Create a new identity and print its USER ID on stdout (and nothing else, so
`ID=$(retalk init ./alice)` works).

init generates an encryption key pair (Curve25519, for Olm sessions) and a
signing key pair (Ed25519, for relay requests), encrypts the private halves
with your passphrase, and stores them in the identity directory, along with
sessions, saved peers and the outbox of unacknowledged messages. Back the
directory up to keep the identity; delete it to destroy it. The passphrase
cannot be recovered.

The location must be explicit: a DIR argument (or -s DIR), or -u [NAME] for a
user-level identity. STORE and the implicit default are not used, and an
existing identity is never overwritten (exit 2).

init does not contact the relay: your public keys are published on the first
send or receive. The relay URL given with --server (or SERVER_URL /
RETALK_RELAY) is saved in the identity for later commands.

What the relay sees: nothing yet.",
        after_help = SHORT_FOOTER,
        after_long_help = crate::commands::init::HELP
    )]
    Init(crate::commands::init::Args),

    /// Print my user id (and public keys with --json)
    #[command(
        long_about = "\
Print this identity's USER ID (32 hex characters) on stdout.

The id is the fingerprint of your public keys: whoever knows it can check that
the keys the relay serves for you are really yours. It contains no secret;
share it freely, over a channel the relay does not control.

Needs the passphrase (to open the identity); does not contact the relay.",
        after_help = SHORT_FOOTER,
        after_long_help = crate::commands::id::HELP
    )]
    Id(crate::commands::id::Args),

    /// Save a peer's user id under a local name
    #[command(
        long_about = "\
Save a peer's USER ID under a local NAME, so that `retalk send NAME ...` works
and their messages show as `NAME: ...` instead of their unverified
self-chosen `~name`.

The name stays on this machine: it never travels to the relay or the peer.
An existing name is re-pointed only with --override. Get the id from the peer over a channel
the relay does not control (they run `retalk id`). The id already pins the
peer's keys; --pin KEY adds a check of their full identity key.

Needs the passphrase (to open the identity); does not contact the relay.",
        after_help = SHORT_FOOTER,
        after_long_help = crate::commands::add::HELP
    )]
    Add(crate::commands::add::Args),

    /// Encrypt and send one message
    #[command(
        long_about = "\
Encrypt TEXT for PEER, hand the ciphertext to the relay, and exit.

PEER is a name saved with `retalk add` or a 32-hex user id. TEXT `-` reads the
message from stdin (one trailing newline is dropped). The first message to a
peer starts an Olm session with one of their one-time keys, fetched from the
relay; if the keys the relay serves do not match the peer's id (or your
--pin), send refuses with PIN MISMATCH instead of encrypting to an impostor.

The message stays in your local outbox until the peer's client acknowledges
it; `retalk receive --follow` resends unacknowledged messages, so a lost or
replaced relay loses nothing. Before sending, retalk checks that the relay
still has your public keys and republishes them if it forgot you.

What the relay sees: your id, the recipient's id, the time and the size of
the ciphertext. Not the text, and not your or their names.",
        after_help = SHORT_FOOTER,
        after_long_help = crate::commands::send::HELP
    )]
    Send(crate::commands::send::Args),

    /// Fetch, decrypt and print my messages (once, or --follow)
    #[command(
        long_about = "\
Fetch this identity's mailbox from the relay, decrypt each message, and print
it: `NAME: TEXT` per line, or with --json one object per line:
{\"id\", \"from\", \"name\", \"text\"}. NAME is your saved name for the sender,
else the sender's self-chosen name marked `~name` (unverified), else their
user id (\"\" in JSON). In plain output, control characters in names and text
are shown escaped (`\\n`, `\\u{1b}`), so one message is one line; --json
carries the exact text.

Each decrypted message is acknowledged to its sender (encrypted). The relay
deletes what it hands over, so messages are printed once: pipe --json
somewhere durable if you need a log. Messages that cannot be decrypted are
reported on stderr. Before reading, retalk checks that the relay still has
your public keys and republishes them if it forgot you.

--follow keeps listening until SIGINT or SIGTERM (then exits 0). A relay that
supports it holds the read open and pushes each message the moment it
arrives; otherwise retalk polls every --interval. Once a minute it maintains
your keys (replenishes one-time keys, rotates the fallback key daily, resends
your unacknowledged messages). If the relay goes away, retalk says so once on
stderr and retries with backoff until it is back.

What the relay sees: that you fetched your mailbox, and when.",
        after_help = SHORT_FOOTER,
        after_long_help = crate::commands::receive::HELP
    )]
    Receive(crate::commands::receive::Args),

    /// Publish this identity's keys on the relay, so peers can reach it
    #[command(after_help = SHORT_FOOTER, after_long_help = crate::commands::register::HELP)]
    Register(crate::commands::register::Args),

    /// Keys, outbox and acknowledgements up to date; prints a JSON summary
    #[command(after_help = SHORT_FOOTER, after_long_help = crate::commands::sync::HELP)]
    Sync(crate::commands::sync::Args),

    /// Check a contact's keys against its id (from the relay, or given) and record them
    #[command(after_help = SHORT_FOOTER, after_long_help = crate::commands::verify::HELP)]
    Verify(crate::commands::verify::Args),

    /// Introduce a contact to a peer: send them its card, encrypted
    #[command(after_help = SHORT_FOOTER, after_long_help = crate::commands::share::HELP)]
    Share(crate::commands::share::Args),

    /// Save a contact from its card (the JSON of `retalk id --json`)
    #[command(after_help = SHORT_FOOTER, after_long_help = crate::commands::import::HELP)]
    Import(crate::commands::import::Args),

    /// List, show or remove saved contacts
    #[command(after_help = SHORT_FOOTER, after_long_help = crate::commands::contacts::HELP)]
    Contacts(crate::commands::contacts::Args),

    /// Refuse a sender's mail unread (or --remove, --list)
    #[command(after_help = SHORT_FOOTER, after_long_help = crate::commands::block::HELP)]
    Block(crate::commands::block::Args),

    /// Print kept messages (sent with --save / received with --save) as JSON lines
    #[command(after_help = SHORT_FOOTER, after_long_help = crate::commands::history::HELP)]
    History(crate::commands::history::Args),

    /// Show saved messages as a chat in the terminal, or all of them in the browser (--web)
    #[command(after_help = SHORT_FOOTER, after_long_help = crate::commands::show::HELP)]
    Show(crate::commands::show::Args),

    /// Rooms: one encrypted copy per member; the relay never sees the roster
    #[command(after_help = SHORT_FOOTER, after_long_help = crate::commands::group::HELP)]
    Group(crate::commands::group::Args),

    /// Invite codes: mint, list, revoke, and watch for redemptions
    #[command(after_help = SHORT_FOOTER, after_long_help = crate::commands::invite::HELP)]
    Invite(crate::commands::invite::Args),

    /// Redeem a peer's invite code (adds them and asks to be added back)
    #[command(after_help = SHORT_FOOTER, after_long_help = crate::commands::request::HELP)]
    Request(crate::commands::request::Args),

    /// Show or change this identity's saved settings (relay URL)
    #[command(after_help = SHORT_FOOTER, after_long_help = crate::commands::config::HELP)]
    Config(crate::commands::config::Args),

    /// Serve this identity to an AI agent: an MCP server on stdin/stdout
    #[command(
        long_about = "\
Serve this identity as a Model Context Protocol server over stdio, the native
interface for AI agents (Claude Code, Codex, any MCP host): tools to send,
receive, wait for replies, manage contacts and rooms (groups) and read the
conversation, and notifications when mail lands.",
        after_help = SHORT_FOOTER,
        after_long_help = crate::commands::mcp::HELP
    )]
    Mcp(crate::commands::mcp::Args),

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(after_long_help = crate::commands::completions::HELP)]
    Completions(crate::commands::completions::Args),

    /// Print the manual page (roff) on stdout
    #[command(after_long_help = crate::commands::man::HELP)]
    Man(crate::commands::man::Args),
}

/// Parses `2`, `0.5`, `2s` or `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (examples: 2, 0.5, 500ms)"))?;
    let secs = v * scale;
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("'{s}' is out of range (0 to 86400 seconds)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(50) {
        return Err("the interval must be positive, at least 50ms".into());
    }
    Ok(d)
}

pub fn parse_wait(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d > Duration::from_secs(300) {
        return Err("the wait must be at most 300 seconds".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("retalk").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn identity_options_go_before_or_after_the_arguments() {
        let c = parse(&["add", "bob", "0123", "-s", "./alice"]).unwrap();
        assert_eq!(c.global.store, Some(PathBuf::from("./alice")));
        let c = parse(&["-s", "./alice", "add", "bob", "0123"]).unwrap();
        assert_eq!(c.global.store, Some(PathBuf::from("./alice")));
        let c = parse(&[
            "send",
            "bob",
            "hi",
            "--server",
            "http://x",
            "--passphrase-file",
            "p",
        ])
        .unwrap();
        assert_eq!(c.global.server.as_deref(), Some("http://x"));
        assert_eq!(c.global.passphrase_file, Some(PathBuf::from("p")));
    }

    #[test]
    fn bare_u_means_default() {
        let c = parse(&["init", "-u", "--name", "alice"]).unwrap();
        assert_eq!(c.global.user_level.as_deref(), Some("default"));
        let Command::Init(i) = c.command else {
            panic!("not init")
        };
        assert_eq!(i.name.as_deref(), Some("alice"));
        assert_eq!(i.dir, None);
        let c = parse(&["init", "-u", "work"]).unwrap();
        assert_eq!(c.global.user_level.as_deref(), Some("work"));
        let c = parse(&["receive", "-u"]).unwrap();
        assert_eq!(c.global.user_level.as_deref(), Some("default"));
        let c = parse(&["receive"]).unwrap();
        assert_eq!(c.global.user_level, None);
    }

    #[test]
    fn init_takes_an_optional_directory() {
        let c = parse(&["init", "./alice", "--name", "alice"]).unwrap();
        let Command::Init(i) = c.command else {
            panic!("not init")
        };
        assert_eq!(i.dir, Some(PathBuf::from("./alice")));
    }

    #[test]
    fn send_accepts_dash_for_stdin_and_json() {
        let c = parse(&["send", "bob", "-", "--json"]).unwrap();
        let Command::Send(s) = c.command else {
            panic!("not send")
        };
        assert_eq!(s.words, ["bob", "-"]);
        assert!(s.json);
        let Command::Send(s) = parse(&["send", "--peer", "bob", "hi", "--save"])
            .unwrap()
            .command
        else {
            panic!("not send")
        };
        assert_eq!(
            (s.peer.as_deref(), s.words.as_slice(), s.save),
            (Some("bob"), &["hi".to_string()][..], true)
        );
        let c = parse(&["send", "bob", "--", "-1 works"]).unwrap();
        let Command::Send(s) = c.command else {
            panic!("not send")
        };
        assert_eq!(s.words[1], "-1 works");
    }

    #[test]
    fn receive_defaults() {
        let Command::Receive(r) = parse(&["receive"]).unwrap().command else {
            panic!("not receive")
        };
        assert!(!r.follow && !r.json);
        assert_eq!(r.interval, None);
        assert_eq!(r.wait, Duration::from_secs(25));
        let Command::Receive(r) = parse(&["receive", "-f", "--interval", "500ms", "--wait", "0"])
            .unwrap()
            .command
        else {
            panic!("not receive")
        };
        assert!(r.follow);
        assert_eq!(r.interval, Some(Duration::from_millis(500)));
        assert_eq!(r.wait, Duration::ZERO);
    }

    #[test]
    fn the_0_3_spellings_parse() {
        let c = parse(&[
            "init",
            "--dir",
            "d",
            "--relay",
            "http://r",
            "--display-name",
            "n",
            "--passphrase-path",
            "f",
            "--no-register",
        ])
        .unwrap();
        assert_eq!(c.global.store, Some(PathBuf::from("d")));
        assert_eq!(c.global.server.as_deref(), Some("http://r"));
        assert_eq!(c.global.passphrase_file, Some(PathBuf::from("f")));
        let Command::Init(i) = c.command else {
            panic!("not init")
        };
        assert_eq!(i.name.as_deref(), Some("n"));
        assert!(i.no_register);
        let c = parse(&[
            "receive",
            "--peer",
            "a",
            "--peer",
            "b",
            "--follow",
            "--interval",
            "60",
            "--quiet",
            "--user",
            "x",
            "-p",
            "s",
            "--api-key",
            "k",
        ])
        .unwrap();
        assert_eq!(c.global.user_level.as_deref(), Some("x"));
        assert_eq!(c.global.passphrase.as_deref(), Some("s"));
        assert_eq!(c.global.api_key.as_deref(), Some("k"));
        let Command::Receive(r) = c.command else {
            panic!("not receive")
        };
        assert_eq!(r.peer, ["a", "b"]);
        assert!(r.follow && r.quiet && r.json_output());
        let c = parse(&[
            "add",
            "f1041c25c87351d8550b31cc6b13ab04",
            "--peer",
            "bob",
            "--verify",
            "--override",
        ])
        .unwrap();
        let Command::Add(a) = c.command else {
            panic!("not add")
        };
        assert_eq!(
            (a.peer.as_deref(), a.verify, a.replace, a.second),
            (Some("bob"), true, true, None)
        );
        for cmd in [
            &["sync"][..],
            &["register"],
            &["contacts", "--json"],
            &["block", "--list", "--json"],
            &["history", "--peer", "bob"],
            &["verify", "bob"],
            &["config"],
            &["completions", "bash"],
            &["man"],
            &["id", "--card"],
            &["id", "--last"],
            &["id", "--invite-message"],
            &["receive", "--all", "--peers-only"],
        ] {
            parse(cmd).unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        }
    }

    #[test]
    fn usage_errors_exit_2() {
        for bad in [
            &["send"][..],
            &["add"],
            &["frobnicate"],
            &["receive", "--interval", "0"],
            &["receive", "--interval", "soon"],
            &["receive", "--wait", "9999"],
            &[],
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
        assert_eq!(parse(&["--help"]).unwrap_err().exit_code(), 0);
        assert_eq!(parse(&["--version"]).unwrap_err().exit_code(), 0);
    }

    #[test]
    fn every_long_help_teaches_identity_sources_and_exit_codes() {
        let mut cmd = Cli::command();
        let top = cmd.render_long_help().to_string();
        assert!(top.contains("Exit codes"));
        for sub in ["init", "id", "add", "send", "receive"] {
            let mut c = Cli::command();
            let help = c
                .find_subcommand_mut(sub)
                .unwrap()
                .render_long_help()
                .to_string();
            for needle in [
                "Which identity acts",
                "STORE",
                "-u, --user-level",
                "PICKLE_SECRET",
                "Exit codes",
                "Examples:",
            ] {
                assert!(help.contains(needle), "{sub} --help lacks {needle}");
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("0.25s").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("NaN").is_err());
        assert!(parse_duration("").is_err());
    }
}
