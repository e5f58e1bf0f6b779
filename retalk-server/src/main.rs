//! `retalk-server`: run a relay. See `retalk-server --help` and
//! `docs/server.md`.

use std::process::ExitCode;

use clap::Parser;
use retalk_server::cli::Args;
use retalk_server::http::ACCESS_LOG_TARGET;
use retalk_server::Relay;
use tracing_subscriber::EnvFilter;

fn init_logging(log_requests: bool) {
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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

async fn wait_for_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
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
    init_logging(config.log_requests);
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
        let signal = wait_for_signal().await;
        tracing::info!("{signal}: stopping");
        relay.shutdown().await;
        ExitCode::SUCCESS
    })
}
