//! The command line: `serve` and the tools around it. `main.rs` only dispatches;
//! each subcommand lives in its own module here.

pub mod backup;
pub mod client;
pub mod config_check;
pub mod healthcheck;
pub mod simulate;

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{self, Layered, ServeArgs};

/// Self-hosted WhatsApp Business Cloud API gateway.
#[derive(Parser)]
#[command(name = "wabridge", version = crate::app::VERSION, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the gateway: Meta's webhook endpoint, the API and the delivery workers.
    Serve(ServeArgs),
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Send correctly signed Meta-format webhook events to a running wabridge.
    Simulate(simulate::SimulateArgs),
    /// Copy the database consistently, also while the server runs.
    Backup(backup::BackupArgs),
    /// Exit 0 when the gateway answers GET /healthz, 1 otherwise (for monitors and containers).
    Healthcheck(healthcheck::HealthcheckArgs),
}

#[derive(Subcommand)]
pub enum ConfigAction {
    /// Print the effective configuration (secrets masked) and every problem found;
    /// exit 1 when there is a problem. Takes the same settings as `serve`.
    Check(ServeArgs),
}

/// Parses the process's arguments with the config file layered in; on a usage
/// error prints it and exits 2.
pub fn parse() -> (Command, Layered) {
    parse_from(std::env::args_os().collect())
}

pub fn parse_from(argv: Vec<OsString>) -> (Command, Layered) {
    let layered = match config::parse_layered(Cli::command(), argv) {
        Ok(l) => l,
        Err(e) => e.exit(),
    };
    let cli = match Cli::from_arg_matches(&layered.matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    (cli.command, layered)
}
