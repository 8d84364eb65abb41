//! The `cch` binary: `cch serve` (default), `cch migrate`.

use clap::{Parser, Subcommand};

/// cch: a gateway between AI coding clients and upstream AI providers.
#[derive(Parser)]
#[command(name = "cch", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default when no command is given).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // A `.env` file is optional; real environment variables win over it.
    let _ = dotenvy::dotenv();
    let settings = match claude_code_hub::app::config::Settings::from_process_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cch: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    claude_code_hub::app::wiring::init_logging(settings.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cch: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => claude_code_hub::app::wiring::serve(settings).await,
            Command::Migrate => claude_code_hub::app::wiring::migrate(settings).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("cch: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
