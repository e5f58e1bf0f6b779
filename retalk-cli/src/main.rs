//! `retalk`: the command line of the retalk message bus.
//!
//! Module map:
//! * [`args`]: commands, flags and help texts (clap);
//! * [`identity`]: which identity directory acts;
//! * [`secret`]: where the passphrase comes from;
//! * [`relay`]: which relay URL is used;
//! * [`output`]: the stdout/stderr contract and message formatting;
//! * [`follow`]: the `receive --follow` loop;
//! * [`commands`]: one module per command;
//! * [`backend`]: the only caller of the client library;
//! * [`error`]: errors and exit codes.

mod args;
mod backend;
mod commands;
mod env;
mod error;
mod follow;
mod identity;
mod output;
mod relay;
mod secret;

use args::{Cli, Command};
use clap::Parser;
use commands::Ctx;
use error::{CliError, EXIT_OK};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version exit 0 on stdout; usage errors exit 2 on stderr.
            let _ = e.print();
            std::process::exit(e.exit_code());
        }
    };
    let code = match run(&cli) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            output::note(&e.render());
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn run(cli: &Cli) -> Result<(), CliError> {
    // One thread is plenty for a CLI and starts fastest.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))?;
    let env = env::ProcessEnv;
    let ctx = Ctx {
        global: &cli.global,
        env: &env,
    };
    rt.block_on(async {
        match &cli.command {
            Command::Init(a) => commands::init::run(&ctx, a).await,
            Command::Id(a) => commands::id::run(&ctx, a).await,
            Command::Add(a) => commands::add::run(&ctx, a).await,
            Command::Send(a) => commands::send::run(&ctx, a).await,
            Command::Receive(a) => commands::receive::run(&ctx, a).await,
        }
    })
}
