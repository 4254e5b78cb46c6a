use std::process::ExitCode;

use wabridge::cli::{
    self, backup, config_check, healthcheck, secrets, simulate, Command, ConfigAction,
    SecretsAction,
};

/// glibc's malloc took a fifth of the gateway's CPU under load (perf: its
/// arenas' locks and consolidation across the tokio and writer threads);
/// mimalloc's thread-local heaps do the same work for much less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let (command, layered) = match cli::parse() {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    match command {
        Command::Serve(args) => match wabridge::app::serve(args, layered.unknown) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("wabridge: error: {err}");
                ExitCode::from(err.exit_code())
            }
        },
        Command::Config {
            action: ConfigAction::Check(args),
        } => config_check::run(&args, &layered),
        Command::Secrets {
            action: SecretsAction::RotateKey(args),
        } => secrets::rotate_key(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Backup(args) => backup::run(&args),
        Command::Healthcheck(args) => healthcheck::run(&args),
    }
}
