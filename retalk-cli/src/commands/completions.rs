//! `retalk completions SHELL`: print a completion script.

use crate::error::CliError;
use clap::CommandFactory;

/// `retalk completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// bash, zsh, fish, elvish or powershell
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// The `--help` text after the options.
pub const HELP: &str = "\
Examples:
  retalk completions bash > ~/.local/share/bash-completion/completions/retalk
  retalk completions zsh > ~/.zfunc/_retalk
  retalk completions fish > ~/.config/fish/completions/retalk.fish
";

/// Runs `retalk completions`.
pub fn run(args: &Args) -> Result<(), CliError> {
    let mut cmd = crate::args::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "retalk", &mut buf);
    crate::output::write_all_stdout(&buf)
}
