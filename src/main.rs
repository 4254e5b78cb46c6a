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
    let cli = Cli::parse();
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
