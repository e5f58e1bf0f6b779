//! `retalk`: the command line of the retalk message bus.
//!
//! Module map:
//! * [`args`]: commands, flags and help texts (clap);
//! * [`select`]: which identity acts, with which passphrase and relay
//!   (reusable by other front ends);
//! * [`output`]: the stdout/stderr contract and message formatting;
//! * [`follow`]: the `receive --follow` loop;
//! * [`commands`]: one module per command;
//! * [`chat`], [`web`]: the views of `retalk show` (terminal, browser);
//! * [`backend`]: the only caller of the client library;
//! * [`error`]: errors and exit codes.

mod args;
mod backend;
mod chat;
mod commands;
mod env;
mod error;
mod follow;
mod output;
mod select;
mod web;

use args::{Cli, Command};
use clap::Parser;
use commands::Ctx;
use error::{CliError, EXIT_OK};

fn main() {
    // 0.3.x spells --no-passphrase `-np`, which clap would read as -n -p.
    let argv: Vec<std::ffi::OsString> = std::env::args_os()
        .map(|a| {
            if a == "-np" {
                "--no-passphrase".into()
            } else {
                a
            }
        })
        .collect();
    let dialect_03 = commands::speaks_03(&argv, &env::ProcessEnv);
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version exit 0 on stdout; usage errors exit 2 on stderr.
            let _ = e.print();
            std::process::exit(e.exit_code());
        }
    };
    let code = match run(&cli, dialect_03) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            output::note(&e.render());
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn run(cli: &Cli, dialect_03: bool) -> Result<(), CliError> {
    // One thread is plenty for a CLI and starts fastest.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))?;
    let env = env::ProcessEnv;
    let ctx = Ctx {
        global: &cli.global,
        env: &env,
        dialect_03,
    };
    rt.block_on(async {
        match &cli.command {
            Command::Init(a) => commands::init::run(&ctx, a).await,
            Command::Id(a) => commands::id::run(&ctx, a).await,
            Command::Add(a) => commands::add::run(&ctx, a).await,
            Command::Send(a) => commands::send::run(&ctx, a).await,
            Command::Receive(a) => commands::receive::run(&ctx, a).await,
            Command::Register(a) => commands::register::run(&ctx, a).await,
            Command::Sync(a) => commands::sync::run(&ctx, a).await,
            Command::Verify(a) => commands::verify::run(&ctx, a).await,
            Command::Contacts(a) => commands::contacts::run(&ctx, a).await,
            Command::Import(a) => commands::import::run(&ctx, a).await,
            Command::Share(a) => commands::share::run(&ctx, a).await,
            Command::Block(a) => commands::block::run(&ctx, a).await,
            Command::History(a) => commands::history::run(&ctx, a).await,
            Command::Show(a) => commands::show::run(&ctx, a).await,
            Command::Group(a) => commands::group::run(&ctx, a).await,
            Command::Invite(a) => commands::invite::run(&ctx, a).await,
            Command::Request(a) => commands::request::run(&ctx, a).await,
            Command::Config(a) => commands::config::run(&ctx, a).await,
            Command::Mcp(a) => commands::mcp::run(&ctx, a).await,
            Command::Completions(a) => commands::completions::run(a),
            Command::Man(a) => commands::man::run(a),
        }
    })
}
