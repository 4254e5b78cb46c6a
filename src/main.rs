use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wabridge::config::ServeArgs;

/// Self-hosted WhatsApp Business Cloud API gateway.
#[derive(Parser)]
#[command(name = "wabridge", version = wabridge::app::VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: Meta's webhook endpoint, the API and the delivery workers.
    Serve(ServeArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version are answers, not errors.
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err)
            if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            let _ = err.print();
            return ExitCode::from(2);
        }
        Err(err) => {
            // One line, as the contract promises, instead of clap's usage block.
            // Its first paragraph, joined: a missing argument is named on the next line.
            let text = err.to_string();
            let first: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty())
                .collect();
            let first = first.join(" ");
            eprintln!(
                "wabridge: {} (see `wabridge --help`)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Serve(args) => match wabridge::app::serve(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("wabridge: error: {err}");
                ExitCode::from(err.exit_code())
            }
        },
    }
}
