//! `retalk receive [--follow] [--json]`: print decrypted messages.

use super::Ctx;
use crate::args::{parse_interval, parse_wait};
use crate::error::CliError;
use std::time::Duration;

/// `retalk receive`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep listening until SIGINT/SIGTERM, maintaining keys every minute
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// One JSON object per message: {"id", "from", "name", "text"} (the
    /// default of the 0.3 forms --peer/--all)
    #[arg(long)]
    pub json: bool,

    /// Only this sender's messages (a saved name or id; repeat for several).
    /// Mail from others stays for a later receive
    #[arg(long, value_name = "PEER")]
    pub peer: Vec<String>,

    /// Every sender's messages, as NDJSON (0.3 form; not with --peer)
    #[arg(long)]
    pub all: bool,

    /// No banner on stderr
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Refuse mail from senders that are not saved contacts, unread (they
    /// cannot use up your one-time keys)
    #[arg(long)]
    pub peers_only: bool,

    /// Keep received messages for `retalk history` (sealed with the
    /// identity's key); also RETALK_SAVE_MESSAGE=1
    #[arg(long)]
    pub save: bool,

    /// With --follow, seconds between polls when the relay cannot push
    /// (e.g. 2, 0.5, 500ms); a relay that pushes delivers at once whatever
    /// the interval [default: 2]
    #[arg(long, value_name = "SECS", value_parser = parse_interval)]
    pub interval: Option<Duration>,

    /// With --follow, longest time to let the relay hold a read open waiting
    /// for mail (0 = always poll)
    #[arg(long, value_name = "SECS", default_value = "25", value_parser = parse_wait)]
    pub wait: Duration,
}

impl Args {
    /// Whether the output is NDJSON: `--json`, or any 0.3-only option.
    pub fn json_output(&self) -> bool {
        self.json || self.all || !self.peer.is_empty() || self.quiet || self.save || self.peers_only
    }
}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
Examples:
  retalk receive --peer bob                   bob's messages, NDJSON
  retalk receive --peer bob --peer carol --follow --interval 60 --quiet
  retalk receive --all --peers-only           everyone you saved; strangers refused
  RETALK_SAVE_MESSAGE=1 retalk receive --all  and keep them for `retalk history`
  retalk receive                              0.0.1 form: `NAME: TEXT` lines
  retalk receive --follow                     live, until ctrl-c
  retalk receive --json | jq -r .text         one JSON object per message
  */5 * * * * PICKLE_SECRET=... retalk receive --json >> ~/inbox.jsonl

",
    crate::common_help!()
);
use crate::follow::{self, Config, Seen};
use crate::output::{self, format_message, Format, Lines, Received};
use std::future::Future;

/// The poll period of `--follow` without `--interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

/// Refuses option combinations that cannot mean anything, with retalk
/// 0.3.0's key phrases (`not both`, `only applies with --follow`).
pub fn check(args: &Args) -> Result<(), CliError> {
    if args.all && !args.peer.is_empty() {
        return Err(CliError::usage("give --peer or --all, not both").hint(
            "--peer PEER reads one sender (repeat it for several); --all reads every sender",
        ));
    }
    if args.interval.is_some() && !args.follow {
        return Err(CliError::usage("--interval only applies with --follow")
            .hint("add --follow (-f) to keep listening, or drop --interval"));
    }
    Ok(())
}

/// The follow-loop timing for these arguments.
pub fn follow_config(args: &Args) -> Config {
    Config {
        interval: args.interval.unwrap_or(DEFAULT_INTERVAL),
        wait: (!args.wait.is_zero()).then_some(args.wait),
        ..Config::default()
    }
}

/// A future that resolves on SIGINT or SIGTERM. The handlers are installed
/// before it is returned, so a signal that arrives at any later moment is
/// caught rather than killing the process.
pub fn shutdown_signal() -> Result<impl Future<Output = ()>, CliError> {
    let err = |e: std::io::Error| CliError::failure(format!("cannot install signal handlers: {e}"));
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(err)?;
        let mut int = signal(SignalKind::interrupt()).map_err(err)?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Runs `retalk receive`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    check(args)?;
    // Catch signals before anything else, so ctrl-c during start-up still
    // ends cleanly.
    let stop = if args.follow {
        Some(shutdown_signal()?)
    } else {
        None
    };
    let format = if args.json_output() {
        Format::Json
    } else {
        Format::Plain
    };
    let opened = ctx.open(!args.quiet).await?;
    opened.need_relay()?;
    let mut me = opened.identity;
    let mut only = Vec::new();
    for p in &args.peer {
        only.push(me.resolve_peer(p)?);
    }
    me.configure_receive(
        only,
        args.peers_only,
        super::save_messages(args.save, ctx.env),
    );
    let mut out = Lines::stdout();
    let mut emit = |m: &Received| out.line(&format_message(m, format));
    let mut log = |l: &str| output::note(l);
    match stop {
        Some(stop) => follow::run(&mut me, &follow_config(args), &mut emit, &mut log, stop).await,
        None => {
            me.ensure_published().await?;
            let batch = me.receive(None).await?;
            follow::deliver(
                &mut me,
                &batch,
                &mut Seen::new(batch.messages.len()),
                &mut emit,
                &mut log,
            )?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_with_all_and_interval_without_follow_are_refused_as_030() {
        let parse = |argv: &[&str]| {
            use clap::Parser;
            let cli = crate::args::Cli::try_parse_from(
                std::iter::once("retalk").chain(argv.iter().copied()),
            );
            let crate::args::Command::Receive(r) = cli.unwrap().command else {
                panic!("not receive")
            };
            r
        };
        let e = check(&parse(&["receive", "--peer", "bob", "--all"])).unwrap_err();
        assert!(e.message.contains("not both"), "{}", e.message);
        assert_eq!(e.exit_code(), 2);
        let e = check(&parse(&["receive", "--peer", "bob", "--interval", "5"])).unwrap_err();
        assert!(
            e.message.contains("only applies with --follow"),
            "{}",
            e.message
        );
        assert!(check(&parse(&[
            "receive",
            "--peer",
            "bob",
            "-f",
            "--interval",
            "60"
        ]))
        .is_ok());
        assert!(check(&parse(&["receive", "--all"])).is_ok());
    }

    #[test]
    fn wait_zero_means_poll_only() {
        let mut a = Args {
            follow: true,
            json: false,
            peer: vec![],
            all: false,
            quiet: false,
            peers_only: false,
            save: false,
            interval: Some(Duration::from_millis(300)),
            wait: Duration::ZERO,
        };
        assert_eq!(follow_config(&a).wait, None);
        assert_eq!(follow_config(&a).interval, Duration::from_millis(300));
        a.wait = Duration::from_secs(25);
        assert_eq!(follow_config(&a).wait, Some(Duration::from_secs(25)));
    }
}
