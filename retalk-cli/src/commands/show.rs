//! `retalk show [USER] [PEER]`: a saved conversation as a chat in the
//! terminal (`--follow` keeps it live), or every conversation in the
//! browser (`--web`, in [`crate::web`]). Reads only the store: never
//! contacts the relay, never takes a message out of the mailbox.

use super::Ctx;
use crate::args::Global;
use crate::backend::{self, Identity};
use crate::chat::{self, ChatMsg, Names, StoreWatch};
use crate::error::CliError;
use crate::select::identity;
use anstyle::{AnsiColor, Style};
use std::io::{IsTerminal, Write};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// `retalk show`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The identity whose saved messages to show (a named identity, like
    /// -u USER); omit it with -s DIR / -u NAME, and then give just the PEER
    #[arg(value_name = "USER")]
    pub user: Option<String>,

    /// The other party: a saved contact name or a 32-hex user id
    #[arg(value_name = "PEER")]
    pub peer: Option<String>,

    /// Show a room (`retalk group`) instead of a two-party conversation:
    /// every member's posts, each with its sender's name
    #[arg(long, value_name = "NAME", conflicts_with = "web")]
    pub group: Option<String>,

    /// Stay open and show messages as they are saved, by any process
    /// (SIGINT or SIGTERM to stop)
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Serve every saved conversation as a local web app instead (127.0.0.1
    /// only, with a per-run token; live as messages are saved)
    #[arg(long)]
    pub web: bool,

    /// Port for --web, on 127.0.0.1 only; 0 picks a free one
    #[arg(long, value_name = "N", default_value_t = 8765)]
    pub port: u16,
}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
Shows the messages kept by `send --save` and `receive --save` (or with
RETALK_SAVE_MESSAGE=1) as a chat: the peer's messages on the left, yours on
the right, a time on each, a line for each new day, long lines wrapped, one
colour per sender. retalk keeps no log unless asked, so show displays
exactly what was kept. It reads only the local store: it never contacts the
relay and never takes messages out of your mailbox, so it can run next to an
agent's `receive --follow --save` without stealing its mail.

The identity: `show USER PEER` uses the named identity USER (like -u USER);
with -s DIR or -u NAME give just the PEER (`show PEER -s DIR`). With
neither, a single word is the USER (as in retalk 0.3) and the identity
otherwise comes from STORE, RETALK_USER or `default`.

--follow stays open and prints each message as soon as any process saves
it (it notices the store's files change; see docs/cli.md).

Output: on a terminal, the chat layout in colour. When stdout is not a
terminal, plain lines (`[HH:MM] NAME: TEXT`, continuation lines indented,
no colour), for grep and logs. NO_COLOR turns colour off; CLICOLOR_FORCE=1
forces the chat layout and colour into a pipe (e.g. `| less -R`). COLUMNS
sets the width when it cannot be asked of the terminal. Times are local
(TZ). Control characters and invisible direction marks in names and texts
are shown escaped (`\\u{1b}`): peer text never reaches the terminal raw.

--web serves every conversation in the browser instead: a sidebar of
conversations (name, count, last message) and the thread as chat bubbles,
updated the moment a message is saved. It listens on 127.0.0.1 only and
prints its URL, with a random per-run token that every request must carry,
on stderr. Compatible with retalk 0.3's web API (GET /api/conversations,
GET /api/messages?peer=ID&after=ROWID, token in X-Retalk-Token or ?t=),
plus GET /api/events (server-sent events).

Examples:
  retalk show alice bob
  retalk show bob -s ./alice --follow
  retalk show alice --group team --follow     a room: every member, each named
  retalk show alice --web
  retalk show alice --web --port 0
  retalk show alice bob | grep -i deploy

",
    crate::common_help!()
);

/// Runs `retalk show`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    let (global, peer) = selection(ctx.global, args)?;
    if args.group.is_some() && peer.is_some() {
        return Err(CliError::usage("give a PEER or --group NAME, not both"));
    }
    if args.web && peer.is_some() {
        return Err(CliError::usage(
            "--web shows every conversation; give no PEER with it",
        ));
    }
    if !args.web && peer.is_none() && args.group.is_none() {
        return Err(
            CliError::usage("show needs a conversation: a PEER, or --web").hint(
                "`retalk show USER PEER`, `retalk show PEER --dir DIR`, or `retalk show USER --web`",
            ),
        );
    }
    let ctx = Ctx {
        global: &global,
        env: ctx.env,
        dialect_03: ctx.dialect_03,
    };
    // Signals first, so ctrl-c during the passphrase or start-up ends cleanly.
    let stop = if args.follow || args.web {
        Some(super::receive::shutdown_signal()?)
    } else {
        None
    };
    let located = identity::locate(&global.selection(), ctx.env, &backend::exists)?;
    let opened = ctx.open_dir(&located.dir, false).await?;
    let me = opened.identity;
    if args.web {
        let stop = stop.expect("installed for --web");
        return crate::web::serve(&me, &located.dir, args.port, stop).await;
    }
    let target = match &args.group {
        Some(g) => {
            let names = Names::load(&me)?;
            let gid = me
                .groups()
                .get(g)
                .map_err(backend::client_error)?
                .map(|r| r.id)
                .or_else(|| {
                    names
                        .rooms
                        .iter()
                        .find(|(id, (label, _))| *id == g || label == g)
                        .map(|(id, _)| id.clone())
                })
                .ok_or_else(|| {
                    CliError::refusal(format!("no group '{}'", chat::neutralise(g, false)))
                        .hint("see `retalk group list`")
                })?;
            Target::Room(gid)
        }
        None => Target::Peer(me.resolve_peer(peer.as_deref().expect("checked above"))?),
    };
    terminal(ctx.env, &me, &located.dir, &target, stop).await
}

/// What the terminal view shows.
enum Target {
    /// The two-party conversation with this user id.
    Peer(String),
    /// The room with this id.
    Room(String),
}

impl Target {
    fn load(&self, me: &Identity, names: &Names, after: i64) -> Result<Vec<ChatMsg>, CliError> {
        match self {
            Target::Peer(p) => chat::load_after(me, names, Some(p), after),
            Target::Room(g) => chat::load_room_after(me, names, g, after),
        }
    }
}

/// Which identity (as global options) and which peer the positionals mean.
fn selection(g: &Global, args: &Args) -> Result<(Global, Option<String>), CliError> {
    let mut global = g.clone();
    let chosen = g.store.is_some() || g.user_level.is_some();
    match (&args.user, &args.peer) {
        (Some(_), Some(_)) if chosen => Err(CliError::usage(
            "with -s/--dir or -u/--user, give just the PEER: retalk show PEER --dir DIR",
        )),
        (Some(one), None) if chosen => Ok((global, Some(one.clone()))),
        (Some(user), peer) => {
            identity::check_user_name(user)?;
            global.user_level = Some(user.clone());
            Ok((global, peer.clone()))
        }
        (None, _) => Ok((global, None)),
    }
}

/// How the terminal view lays messages out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The chat layout (aligned, wrapped); else plain lines.
    pub chat: bool,
    /// Columns.
    pub width: usize,
}

impl Layout {
    fn detect(env: &dyn crate::env::Env) -> Layout {
        let out = std::io::stdout();
        let forced = env.get("CLICOLOR_FORCE").is_some_and(|v| v.trim() != "0");
        let width = terminal_size::terminal_size_of(&out)
            .map(|(w, _)| usize::from(w.0))
            .or_else(|| env.get("COLUMNS").and_then(|c| c.trim().parse().ok()))
            .unwrap_or(80)
            .clamp(32, 120);
        Layout {
            chat: out.is_terminal() || forced,
            width,
        }
    }
}

/// Sender colours other than yours (cyan).
const PALETTE: [AnsiColor; 5] = [
    AnsiColor::Yellow,
    AnsiColor::Magenta,
    AnsiColor::Green,
    AnsiColor::Blue,
    AnsiColor::Red,
];

/// Your messages' marker (0.3.x's look).
const MINE_MARK: &str = "🟢";

/// Others' markers, one per sender in order of first appearance (a direct
/// conversation has one: 🔵), as 0.3.x. They tell senders apart without
/// colour, so the plain layout keeps them too.
const MARKS: [&str; 6] = ["🔵", "🟣", "🟡", "🟠", "🔴", "🟤"];

/// Turns saved messages into terminal text, remembering the last day shown
/// and the senders seen.
pub struct Renderer {
    layout: Layout,
    tz: jiff::tz::TimeZone,
    day: Option<String>,
    senders: Vec<String>,
}

fn paint(style: Style, text: &str) -> String {
    format!("{}{text}{}", style.render(), style.render_reset())
}

fn dim() -> Style {
    Style::new().dimmed()
}

/// One colour per sender: yours is cyan; others' come from the id, so a
/// sender keeps their colour from one run to the next.
fn sender_style(m: &ChatMsg) -> Style {
    let colour = if m.mine {
        AnsiColor::Cyan
    } else {
        let h = m.sender.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        PALETTE[(h % PALETTE.len() as u64) as usize]
    };
    Style::new().bold().fg_color(Some(colour.into()))
}

impl Renderer {
    /// A renderer for `layout`, in time zone `tz`.
    pub fn new(layout: Layout, tz: jiff::tz::TimeZone) -> Renderer {
        Renderer {
            layout,
            tz,
            day: None,
            senders: Vec::new(),
        }
    }

    /// The title: who talks with whom.
    pub fn header(&self, me: &str, peer_name: &str, peer_id: &str) -> String {
        let me = chat::neutralise(me, false);
        let peer_name = chat::neutralise(peer_name, false);
        if !self.layout.chat {
            return format!("# 💬 {me} ⇄ {peer_name} ({peer_id})\n");
        }
        let title = format!(" 💬 {me} ⇄ {peer_name} ");
        let side = self.layout.width.saturating_sub(title.width()) / 2;
        let rule = "─".repeat(side.max(2));
        let painted = format!(
            " 💬 {} ⇄ {} ",
            paint(
                Style::new().bold().fg_color(Some(AnsiColor::Cyan.into())),
                &me
            ),
            paint(Style::new().bold(), &peer_name)
        );
        format!(
            "{}{painted}{}\n{}\n",
            paint(dim(), &rule),
            paint(dim(), &rule),
            paint(dim(), &centre(peer_id, self.layout.width))
        )
    }

    /// The marker of `m`'s sender.
    fn mark(&mut self, m: &ChatMsg) -> &'static str {
        if m.mine {
            return MINE_MARK;
        }
        let i = match self.senders.iter().position(|s| *s == m.sender) {
            Some(i) => i,
            None => {
                self.senders.push(m.sender.clone());
                self.senders.len() - 1
            }
        };
        MARKS[i % MARKS.len()]
    }

    /// One message (with a day line before it when the day changes).
    pub fn message(&mut self, m: &ChatMsg) -> String {
        let at = jiff::Timestamp::from_microsecond((m.ts * 1e6) as i64)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(self.tz.clone());
        let day = at.strftime("📅 %Y-%m-%d %a").to_string();
        let time = at.strftime("%H:%M").to_string();
        let name = chat::neutralise(&m.name, false);
        let text = chat::neutralise(&m.text, true);
        let mut out = String::new();
        if self.day.as_deref() != Some(day.as_str()) {
            if self.layout.chat {
                let line = centre(&format!("── {day} ──"), self.layout.width);
                out.push_str(&format!("\n{}\n", paint(dim(), line.trim_end())));
            } else {
                out.push_str(&format!("-- {day} --\n"));
            }
            self.day = Some(day);
        }
        let mark = self.mark(m);
        let who = paint(sender_style(m), &name);
        // yours: "name 🟢"; others': "🔵 name" (0.3.x's look)
        let (plain_who, who) = if m.mine {
            (format!("{name} {mark}"), format!("{who} {mark}"))
        } else {
            (format!("{mark} {name}"), format!("{mark} {who}"))
        };
        if !self.layout.chat {
            let mut lines = text.split('\n');
            let first = lines.next().unwrap_or("");
            out.push_str(&format!("[{time}] {plain_who}: {first}\n"));
            for l in lines {
                out.push_str(&format!("  {l}\n"));
            }
            return out;
        }
        let width = self.layout.width;
        let bubble = (width * 2 / 3).clamp(20, 72);
        let lines = wrap(&text, bubble);
        out.push('\n');
        if m.mine {
            let head_w = time.width() + 3 + plain_who.width();
            let block = lines
                .iter()
                .map(|l| l.width())
                .max()
                .unwrap_or(0)
                .max(head_w);
            let left = width.saturating_sub(block + 1);
            let pad = " ".repeat(left + block - head_w);
            out.push_str(&format!("{pad}{} · {who}\n", paint(dim(), &time)));
            for l in &lines {
                out.push_str(&format!("{}{l}\n", " ".repeat(left)));
            }
        } else {
            out.push_str(&format!("{who} · {}\n", paint(dim(), &time)));
            for l in &lines {
                out.push_str(&format!("  {l}\n"));
            }
        }
        out
    }
}

fn centre(s: &str, width: usize) -> String {
    let pad = width.saturating_sub(s.width()) / 2;
    format!("{}{s}", " ".repeat(pad))
}

/// Wraps at `width` columns, at spaces where possible; a word longer than
/// the width is cut. Line breaks in the text are kept.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        let mut line_w = 0;
        for word in para.split(' ') {
            let ww = word.width();
            let sep = usize::from(!line.is_empty());
            if line_w + sep + ww <= width {
                if sep == 1 {
                    line.push(' ');
                }
                line.push_str(word);
                line_w += sep + ww;
                continue;
            }
            if !line.is_empty() {
                out.push(std::mem::take(&mut line));
                line_w = 0;
            }
            for c in word.chars() {
                let cw = c.width().unwrap_or(0);
                if line_w + cw > width && !line.is_empty() {
                    out.push(std::mem::take(&mut line));
                    line_w = 0;
                }
                line.push(c);
                line_w += cw;
            }
        }
        out.push(line);
    }
    out
}

/// The terminal view.
async fn terminal(
    env: &dyn crate::env::Env,
    me: &Identity,
    dir: &std::path::Path,
    target: &Target,
    stop: Option<impl std::future::Future<Output = ()>>,
) -> Result<(), CliError> {
    let layout = Layout::detect(env);
    let tz = jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC);
    let mut r = Renderer::new(layout, tz);
    let mut out = anstream::AutoStream::auto(std::io::stdout());
    let mut names = Names::load(me)?;
    let mut watch = StoreWatch::new(dir);
    let mut last = 0;
    let header = match target {
        Target::Peer(peer) => r.header(&names.me, &names.peer(peer), peer),
        Target::Room(gid) => r.header(&names.me, &names.room(gid), gid),
    };
    emit(&mut out, &header)?;
    let first = target.load(me, &names, 0)?;
    for m in &first {
        last = last.max(m.rowid);
        emit(&mut out, &r.message(m))?;
    }
    let Some(stop) = stop else {
        if first.is_empty() {
            // part of the view (stdout, as 0.3.x): `show` renders for people,
            // it is not a data stream
            let hint = "(no saved messages: keep them with `--save` on send and receive, \
                        or RETALK_SAVE_MESSAGE=1)";
            let hint = if layout.chat {
                paint(dim(), hint)
            } else {
                hint.to_owned()
            };
            emit(&mut out, &format!("\n{hint}\n"))?;
        }
        return Ok(());
    };
    crate::output::note("retalk: listening for newly saved messages (ctrl-c to stop)");
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(chat::TICK) => {}
        }
        if !watch.due() {
            continue;
        }
        names = Names::load(me)?;
        for m in target.load(me, &names, last)? {
            last = last.max(m.rowid);
            emit(&mut out, &r.message(&m))?;
        }
    }
}

fn emit(out: &mut impl Write, s: &str) -> Result<(), CliError> {
    out.write_all(s.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                CliError::failure("stdout was closed (broken pipe); stopped")
            } else {
                CliError::failure(format!("cannot write to stdout: {e}"))
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ConvKey;

    fn msg(rowid: i64, mine: bool, text: &str, ts: f64) -> ChatMsg {
        ChatMsg {
            rowid,
            conv: ConvKey::Direct("b".repeat(32)),
            sender: if mine { "a".repeat(32) } else { "b".repeat(32) },
            mine,
            name: if mine { "alice".into() } else { "bob".into() },
            text: text.into(),
            ts,
        }
    }

    fn plain() -> Renderer {
        Renderer::new(
            Layout {
                chat: false,
                width: 80,
            },
            jiff::tz::TimeZone::UTC,
        )
    }

    #[test]
    fn plain_lines_have_day_lines_times_names_and_indented_continuations() {
        let mut r = plain();
        let day1 = 1_700_000_000.0; // Tue 2023-11-14 22:13 UTC
        let s = r.message(&msg(1, false, "hi\nthere", day1))
            + &r.message(&msg(2, true, "yo", day1 + 60.0))
            + &r.message(&msg(3, false, "next day", day1 + 86_400.0));
        assert_eq!(
            s,
            "-- 📅 2023-11-14 Tue --\n[22:13] 🔵 bob: hi\n  there\n[22:14] alice 🟢: yo\n\
             -- 📅 2023-11-15 Wed --\n[22:13] 🔵 bob: next day\n"
        );
    }

    #[test]
    fn hostile_text_is_escaped_in_both_layouts() {
        for chat in [false, true] {
            let mut r = Renderer::new(Layout { chat, width: 60 }, jiff::tz::TimeZone::UTC);
            let mut m = msg(1, false, "\x1b]0;pwned\x07\u{202e}gnp.exe\r", 0.0);
            m.name = "bo\x1b[31mb".into();
            let s = r.message(&m);
            let stripped: String = anstream::adapter::strip_str(&s).to_string();
            assert!(!stripped.contains('\x1b') && !stripped.contains('\u{202e}'));
            assert!(!stripped.contains('\r') && !stripped.contains('\x07'));
            assert!(stripped.contains("\\u{1b}]0;pwned"), "{stripped}");
        }
    }

    #[test]
    fn chat_layout_wraps_and_puts_mine_on_the_right() {
        let mut r = Renderer::new(
            Layout {
                chat: true,
                width: 40,
            },
            jiff::tz::TimeZone::UTC,
        );
        let long = "word ".repeat(20);
        let s = r.message(&msg(1, false, &long, 0.0)) + &r.message(&msg(2, true, "ok", 60.0));
        let plain = anstream::adapter::strip_str(&s).to_string();
        for l in plain.lines() {
            assert!(l.width() <= 40, "too wide: {l:?}");
        }
        let body: Vec<&str> = plain.lines().filter(|l| l.contains("word")).collect();
        assert!(body.len() >= 3, "wrapped: {plain}");
        let mine = plain.lines().find(|l| l.trim() == "ok").unwrap();
        assert!(mine.starts_with(&" ".repeat(20)), "on the right: {mine:?}");
        let head = plain.lines().find(|l| l.ends_with("· alice 🟢")).unwrap();
        assert_eq!(head.width(), 39, "right-aligned: {head:?}");
        assert!(plain.contains("── 📅 1970-01-01 Thu ──"));
        assert!(plain.contains("🔵 bob · 00:00"), "{plain}");
        assert!(s.contains("\x1b["), "coloured");
    }

    #[test]
    fn each_other_sender_keeps_one_marker_in_order_of_appearance() {
        let mut r = plain();
        let mut carol = msg(3, false, "c", 0.0);
        carol.sender = "c".repeat(32);
        carol.name = "carol".into();
        let s = r.message(&msg(1, false, "b", 0.0))
            + &r.message(&carol)
            + &r.message(&msg(4, false, "b again", 0.0))
            + &r.message(&msg(5, true, "me", 0.0));
        assert!(s.contains("🔵 bob: b\n"), "{s}");
        assert!(s.contains("🟣 carol: c\n"), "{s}");
        assert!(s.contains("🔵 bob: b again\n"), "{s}");
        assert!(s.contains("alice 🟢: me\n"), "{s}");
    }

    #[test]
    fn wrap_cuts_long_words_and_keeps_breaks() {
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("a b c", 3), ["a b", "c"]);
        assert_eq!(wrap("a\n\nb", 10), ["a", "", "b"]);
        assert_eq!(wrap("日本語です", 4), ["日本", "語で", "す"]);
    }
}
