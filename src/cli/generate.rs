//! `reminderd generate`: the man pages and shell completions the Debian package ships, made
//! from the clap definitions so they never drift from the real command line.
//!
//! Hidden from `--help`: it is a build step (`packaging/build-deb`), not something an admin
//! runs.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, GenerateCommand, exit};

/// Writes the man pages or the completions into the folder the command names.
pub(super) fn run(command: &GenerateCommand) -> Result<u8> {
    match command {
        GenerateCommand::Man { dir } => man(dir)?,
        GenerateCommand::Completions { dir } => completions(dir)?,
    }
    Ok(exit::OK)
}

/// One section-1 page per visible command: `reminderd.1`, `reminderd-import.1`,
/// `reminderd-user-add.1`, ...
fn man(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("cannot write the man pages to {}", dir.display()))
}

/// The completions under the names Debian's shells look for once installed:
/// `reminderd.bash` (installed as `reminderd`), `_reminderd` (zsh), `reminderd.fish`.
fn completions(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut visible_command(), "reminderd", dir).with_context(
            || format!("cannot write the {shell} completions to {}", dir.display()),
        )?;
    }
    Ok(())
}

/// The command line without its hidden subcommands: clap_complete offers hidden ones too
/// (clap_mangen leaves them out itself), and clap has no way to remove a subcommand, so this
/// is the same command rebuilt from its visible parts.
fn visible_command() -> clap::Command {
    let full = Cli::command();
    let mut cmd = clap::Command::new("reminderd")
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    cmd = cmd.version(env!("CARGO_PKG_VERSION"));
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    cmd
}
