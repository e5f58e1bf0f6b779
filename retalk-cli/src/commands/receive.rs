//! `retalk receive [--follow] [--json]`: print decrypted messages.

use super::Ctx;
use crate::args::ReceiveArgs;
use crate::error::CliError;
use crate::follow::{self, Config, Seen};
use crate::output::{self, format_message, Format, Lines, Received};
use std::future::Future;

/// The follow-loop timing for these arguments.
pub fn follow_config(args: &ReceiveArgs) -> Config {
    Config {
        interval: args.interval,
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
pub async fn run(ctx: &Ctx<'_>, args: &ReceiveArgs) -> Result<(), CliError> {
    // Catch signals before anything else, so ctrl-c during start-up still
    // ends cleanly.
    let stop = if args.follow {
        Some(shutdown_signal()?)
    } else {
        None
    };
    let format = if args.json {
        Format::Json
    } else {
        Format::Plain
    };
    let mut out = Lines::stdout();
    let mut emit = |m: &Received| out.line(&format_message(m, format));
    let mut log = |l: &str| output::note(l);

    let opened = ctx.open(true).await?;
    opened.need_relay()?;
    let mut me = opened.identity;
    match stop {
        Some(stop) => follow::run(&mut me, &follow_config(args), &mut emit, &mut log, stop).await,
        None => {
            me.ensure_published().await?;
            let batch = me.receive(None).await?;
            follow::deliver(
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
    use std::time::Duration;

    #[test]
    fn wait_zero_means_poll_only() {
        let mut a = ReceiveArgs {
            follow: true,
            json: false,
            interval: Duration::from_millis(300),
            wait: Duration::ZERO,
        };
        assert_eq!(follow_config(&a).wait, None);
        assert_eq!(follow_config(&a).interval, Duration::from_millis(300));
        a.wait = Duration::from_secs(25);
        assert_eq!(follow_config(&a).wait, Some(Duration::from_secs(25)));
    }
}
