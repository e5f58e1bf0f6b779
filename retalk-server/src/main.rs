//! `retalk-server`: run a relay. See `retalk-server --help` and
//! `docs/server.md`.

use std::process::ExitCode;

use clap::Parser;
use retalk_server::cli::Args;
use retalk_server::Relay;
use retalk_server::ACCESS_LOG_TARGET;
use tracing_subscriber::EnvFilter;

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

fn main() -> ExitCode {
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
        let db = config.db.clone();
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
            db.display()
        );
        let signal = signals.wait().await;
        tracing::info!("{signal}: stopping");
        relay.shutdown().await;
        ExitCode::SUCCESS
    })
}
