//! The `reminderd` binary: parse the command line, set up logging, run one command.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                cli::exit::USAGE
            } else {
                cli::exit::OK
            });
        }
    };
    cli::init_logging(&args);
    match cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.chain().any(cli::is_broken_pipe) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
