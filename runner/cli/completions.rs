//! `lab-runner completions SHELL`: the shell completion script, on stdout.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::args::Cli;
use super::exit;

const AFTER_HELP: &str = "\
Examples:
  lab-runner completions bash > ~/.local/share/bash-completion/completions/lab-runner
  lab-runner completions zsh  > ~/.zfunc/_lab-runner      # with fpath+=(~/.zfunc) before compinit
  lab-runner completions fish > ~/.config/fish/completions/lab-runner.fish";

/// Print the shell completion script for lab-runner
#[derive(Debug, Clone, Args)]
#[command(after_help = AFTER_HELP)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: Shell,
}

pub async fn run(args: CompletionsArgs) -> anyhow::Result<u8> {
    let mut command = Cli::command();
    let name = command.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut out);
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&out).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(exit::SUCCESS),
        // `lab-runner completions bash | head` closes the pipe early: not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(exit::SUCCESS),
        Err(e) => Err(anyhow::Error::new(e).context("Failed to write the completion script")),
    }
}
