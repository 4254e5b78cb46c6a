//! The command line: `serve` and the tools around it. `main.rs` only dispatches;
//! each subcommand lives in its own module here.

pub mod backup;
pub mod client;
pub mod config_check;
pub mod healthcheck;
pub mod secrets;
pub mod simulate;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{self, Layered, Origin, ServeArgs};

/// Self-hosted WhatsApp Business Cloud API gateway.
#[derive(Parser)]
#[command(name = "wabridge", version = crate::VERSION, about)]
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
    /// Manage the key that encrypts the stored secrets.
    Secrets {
        #[command(subcommand)]
        action: SecretsAction,
    },
    /// Exit 0 when the gateway answers GET /healthz, 1 otherwise (for monitors and containers).
    Healthcheck(healthcheck::HealthcheckArgs),
}

#[derive(Subcommand)]
pub enum ConfigAction {
    /// Print the effective configuration (secrets masked) and every problem found;
    /// exit 1 when there is a problem. Takes the same settings as `serve`.
    Check(ServeArgs),
}

#[derive(Subcommand)]
pub enum SecretsAction {
    /// Re-encrypt every stored secret under a new key and replace the key
    /// file; the server must be stopped. Takes the same settings as `serve`.
    RotateKey(ServeArgs),
}

/// Parses the process's arguments with the config file layered in. `Err` is
/// the exit code after `--help`/`--version` (0) or a usage error (2), already
/// printed.
pub fn parse() -> Result<(Command, Layered), ExitCode> {
    parse_from(std::env::args_os().collect())
}

pub fn parse_from(argv: Vec<OsString>) -> Result<(Command, Layered), ExitCode> {
    let layered = config::parse_layered(Cli::command(), argv).map_err(usage_error)?;
    let mut cli = Cli::from_arg_matches(&layered.matches).map_err(usage_error)?;
    if let Command::Serve(args) = &mut cli.command {
        args.send_rate_chosen = layered.origin("send_rate_per_number") != Origin::Default;
    }
    Ok((cli.command, layered))
}

/// Prints a clap error the way CONTRACT section 1 wants it: `--help` and
/// `--version` are answers (exit 0); a usage error is one line on stderr (exit 2).
fn usage_error(err: clap::Error) -> ExitCode {
    if !err.use_stderr() {
        let _ = err.print();
        return ExitCode::SUCCESS;
    }
    if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let _ = err.print();
        return ExitCode::from(2);
    }
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
    ExitCode::from(2)
}
