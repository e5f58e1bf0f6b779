//! `retalk man`: print the manual page.

use crate::error::CliError;
use clap::CommandFactory;

/// `retalk man`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// The `--help` text after the options.
pub const HELP: &str = "\
Examples:
  retalk man | man -l -
  retalk man > ~/.local/share/man/man1/retalk.1
";

/// Runs `retalk man`.
pub fn run(_args: &Args) -> Result<(), CliError> {
    let cmd = crate::args::Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut buf)
        .map_err(|e| CliError::failure(format!("cannot render the manual: {e}")))?;
    crate::output::write_all_stdout(&buf)
}
