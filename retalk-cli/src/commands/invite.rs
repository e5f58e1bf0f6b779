//! `retalk invite new|list|revoke|watch`: invite codes (retalk 0.3.x
//! compatible); the rules live in the library's `user.invites()`.

use super::Ctx;
use crate::args::parse_interval;
use crate::backend::client_error;
use crate::error::CliError;
use crate::output::{self, json_line, Lines, Ordered, Received};
use serde_json::Value;
use std::time::{Duration, Instant};

/// What `retalk invite` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// Mint a code
    New,
    /// List minted codes
    List,
    /// Revoke a code
    Revoke,
    /// Accept (or refuse) contact requests that redeem your codes
    Watch,
}

/// `retalk invite`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// new, list, revoke or watch
    #[arg(value_enum, value_name = "ACTION")]
    pub action: Action,

    /// The code (revoke; the whole code, or the hint `invite list` shows)
    #[arg(value_name = "CODE")]
    pub code: Option<String>,

    /// With new: save the redeemer under this name (if no contact has it)
    #[arg(long, value_name = "NAME")]
    pub peer: Option<String>,

    /// With new: multi-use, never expires, lives until revoked (default:
    /// single-use, expires in 7 days)
    #[arg(long)]
    pub permanent: bool,

    /// With new: expiry in days (0 = never)
    #[arg(long, value_name = "DAYS")]
    pub expires: Option<f64>,

    /// With list: one JSON object per code
    #[arg(long)]
    pub json: bool,

    /// With watch: keep watching until ctrl-c
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// With watch --follow: seconds between looks [default: 2]
    #[arg(long, value_name = "SECS", value_parser = parse_interval)]
    pub interval: Option<Duration>,

    /// With watch: no banner on stderr
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// The `--help` text after the options.
pub const HELP: &str = concat!(
    "\
An invite code lets someone you have not met add you and be added back in
one step: give them your id and a code (`retalk id --invite-message --code
CODE` prints a paste-able snippet); they run `retalk request YOUR-ID --code
CODE`, which sends you an encrypted contact request with their keys; your
`invite watch` (or any `receive`) checks the code and saves them as a
verified contact: {\"kind\": \"contact_accepted\", ...}. A dead code or a card
that does not match its sender is refused: {\"kind\":
\"contact_request_rejected\", \"reason\": \"unknown-code|revoked|expired|
consumed|card-mismatch\"}.

A code proves the sender was given it, not who they are. Codes are stored
only hashed (the code is shown once, by `invite new`; `list` shows its first
characters) and compared in constant time. `watch` only fetches mail from
senders who are not contacts and whose mail is a contact request: your
contacts' mail stays on the relay for `receive`.

Examples:
  retalk invite new                        {\"code\", \"kind\", \"expires\", \"peer\"}
  retalk invite new --peer dana --expires 2
  retalk invite new --permanent
  retalk invite list --json
  retalk invite revoke CODE
  retalk invite watch --follow --interval 30 --quiet

",
    crate::common_help!()
);

/// Runs `retalk invite`.
pub async fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    if args.action != Action::Revoke && args.code.is_some() {
        return Err(CliError::usage("only `invite revoke` takes a CODE"));
    }
    let stop = if args.action == Action::Watch && args.follow {
        Some(super::receive::shutdown_signal()?)
    } else {
        None
    };
    let opened = ctx
        .open(args.action == Action::Watch && !args.quiet)
        .await?;
    let me = &opened.identity;
    let mut out = Lines::stdout();
    match args.action {
        Action::New => {
            let i = me
                .invites()
                .create(args.peer.as_deref(), args.permanent, args.expires)
                .map_err(client_error)?;
            out.line(&json_line(&i))?;
            output::note(&format!(
                "invite code minted ({}). Send your peer your id and this redeem command:\n\
                 ```bash\nretalk request {} --code {}\n```",
                i.kind,
                me.user_id(),
                i.code
            ));
        }
        Action::List => {
            let all = me.invites().list().map_err(client_error)?;
            if all.is_empty() && !args.json {
                output::note("no invite codes: mint one with `retalk invite new`");
            }
            for i in all {
                if args.json {
                    out.line(&json_line(&i))?;
                } else {
                    let state = if i.revoked {
                        "revoked"
                    } else if i.active {
                        "active"
                    } else {
                        "spent/expired"
                    };
                    out.line(&format!(
                        "{}\t{}\t{state}\tuses={}\tpeer={}",
                        i.code,
                        i.kind,
                        i.uses,
                        i.peer
                            .as_deref()
                            .map(output::one_line)
                            .unwrap_or("-".into())
                    ))?;
                }
            }
        }
        Action::Revoke => {
            let code = args.code.as_deref().ok_or_else(|| {
                CliError::usage("revoke needs the CODE to revoke").hint("see `retalk invite list`")
            })?;
            if !me.invites().revoke(code).map_err(client_error)? {
                return Err(
                    CliError::refusal("no such invite code").hint("see `retalk invite list`")
                );
            }
            output::note(&format!("revoked {}", output::one_line(code)));
        }
        Action::Watch => {
            opened.need_relay()?;
            me.ensure_published().await?;
            let interval = args.interval.unwrap_or(Duration::from_secs(2));
            let mut next_maintain = Instant::now() + Duration::from_secs(60);
            let Some(stop) = stop else {
                for r in me.invites().watch().await.map_err(client_error)? {
                    out.line(&json_line(&record(r)))?;
                }
                return Ok(());
            };
            tokio::pin!(stop);
            loop {
                match me.invites().watch().await {
                    Ok(recs) => {
                        for r in recs {
                            out.line(&json_line(&record(r)))?;
                        }
                    }
                    Err(e) if e.is_transient() => {
                        output::note(&format!(
                            "retalk: {}; retrying",
                            output::one_line(&e.to_string())
                        ));
                    }
                    Err(e) => return Err(client_error(e)),
                }
                if Instant::now() >= next_maintain {
                    if let Err(e) = me.register().await {
                        output::note(&format!("retalk: key upkeep postponed: {}", e.message));
                    }
                    next_maintain = Instant::now() + Duration::from_secs(60);
                }
                tokio::select! {
                    _ = &mut stop => return Ok(()),
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        }
    }
    Ok(())
}

/// A watch record in 0.3.0's shape.
fn record(r: Value) -> Ordered {
    let from = r
        .get("from")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut m = Received::chat(String::new(), from, String::new(), String::new());
    m.notice = Some(r);
    m.to_json()
}
