//! `retalk-server`: run a relay. See `retalk-server --help` and
//! `docs/server.md`.

use std::process::ExitCode;

use clap::Parser;
use retalk_server::cli::Args;
use retalk_server::Relay;
use retalk_server::ACCESS_LOG_TARGET;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator. Every request allocates and
/// frees a few dozen small buffers (the body, its parse, the answer), on one
/// thread and then another (HTTP worker, verifier, writer); glibc's malloc
/// spent about 9% of the relay's CPU on them (docs/benchmarks.md, round 3),
/// mimalloc's per-thread free lists much less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(log_requests: bool, json: bool) {
    // Without RUST_LOG: start-up problems and warnings only, and no
    // per-request lines unless asked for.
    let mut filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(format!("warn,{ACCESS_LOG_TARGET}=off")),
    };
    if log_requests {
        if let Ok(d) = format!("{ACCESS_LOG_TARGET}=info").parse() {
            filter = filter.add_directive(d);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Stop signals, registered before the start-up line is printed so that a
/// signal sent as soon as the relay announces itself is never missed (the
/// default action would kill the process without a clean stop).
struct StopSignals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn register() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(StopSignals {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(StopSignals {})
        }
    }

    async fn wait(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => "SIGINT",
                _ = self.term.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// `retalk-server migrate`: copy a SQLite relay into PostgreSQL.
#[derive(Debug, clap::Parser)]
#[command(
    name = "retalk-server migrate",
    bin_name = "retalk-server migrate",
    about = "Copy a SQLite relay's keys, mail, refusals and recent nonces into an empty \
             PostgreSQL database (creating its schema); the SQLite file is only read",
    after_help = "Stop the old relay first: mail it accepts during the copy is not copied.\n\n\
                  Example:\n  retalk-server migrate --from /var/lib/retalk/server.db \\\n      \
                  --to postgres://retalk@db.internal:5432/retalk"
)]
struct MigrateArgs {
    /// The SQLite database of the old relay (ours, or a reference relay's)
    #[arg(long, value_name = "PATH")]
    from: std::path::PathBuf,
    /// The PostgreSQL database to fill (postgres://user@host:port/db)
    #[arg(long, value_name = "URL")]
    to: String,
}

fn migrate(argv: Vec<String>) -> ExitCode {
    let args = MigrateArgs::parse_from(argv);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("retalk-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(retalk_server::migrate::sqlite_to_postgres(
        &args.from, &args.to,
    )) {
        Ok(copied) => {
            eprintln!(
                "retalk-server migrate: copied {copied} from {}",
                args.from.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("retalk-server migrate: {e} (nothing was written)");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    // SQLite takes a page cache only before it starts: first thing, so
    // that every database of the process (the relay's, `migrate`'s) gets
    // it. Without it (it is refused only once SQLite runs) the relay works
    // the same, with one needless scan per commit.
    retalk_server::prepare_sqlite();
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("migrate") {
        return migrate(argv.into_iter().skip(1).collect());
    }
    let args = Args::parse();
    let config = match args.resolve(&|name| std::env::var(name).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("retalk-server: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_requests, config.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("retalk-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let mut signals = match StopSignals::register() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("retalk-server: cannot watch for stop signals: {e}");
                return ExitCode::FAILURE;
            }
        };
        let db = match &config.postgres {
            Some(url) => retalk_server::cli::redact_url(url),
            None => config.db.display().to_string(),
        };
        let relay = match Relay::start(config).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("retalk-server: {e}");
                return ExitCode::FAILURE;
            }
        };
        let audiences = relay.audiences();
        eprintln!(
            "retalk-server {}: listening on {}, {} {}, database {}",
            env!("CARGO_PKG_VERSION"),
            relay.local_addr(),
            if audiences.len() == 1 {
                "audience"
            } else {
                "audiences"
            },
            audiences.join(", "),
            db
        );
        let signal = signals.wait().await;
        tracing::info!("{signal}: stopping");
        relay.shutdown().await;
        ExitCode::SUCCESS
    })
}
