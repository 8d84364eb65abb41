//! The `cch` binary: `cch serve` (default), `cch migrate`, `cch export`, `cch import`.

use clap::{Parser, Subcommand};

/// jemalloc for every Rust allocation: less CPU per request than glibc's malloc at a few MB
/// more resident memory, with its background threads giving freed pages back (see
/// `docs/DESIGN.md`, "Allocator"; tuned at run time with `_RJEM_MALLOC_CONF`).
#[cfg(unix)]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Encrypt every stored provider and webhook secret with a new secret key (see README).
    RotateSecretKey,
    /// Write the configuration (providers, users, key hashes, prices, rules, settings) as JSON
    /// to stdout.
    Export,
    /// Apply a configuration file from `cch export` (`-` for stdin), or, with `cch-ts --from
    /// postgres://…`, bring over an original Claude Code Hub database. Idempotent.
    Import {
        /// A file written by `cch export`, `-` for stdin, or `cch-ts`.
        source: String,
        /// With `cch-ts`: the original's PostgreSQL URL.
        #[arg(long)]
        from: Option<String>,
        /// Print what would be created or changed (and what cannot be mapped); write nothing.
        #[arg(long)]
        dry_run: bool,
    },
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
    let traces =
        claude_code_hub::app::wiring::init_logging(settings.log_format, runtime.handle().clone());
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => claude_code_hub::app::wiring::serve(settings).await,
            Command::Migrate => claude_code_hub::app::wiring::migrate(settings).await,
            Command::RotateSecretKey => {
                claude_code_hub::app::wiring::rotate_secret_key(settings).await
            }
            Command::Export => claude_code_hub::app::config_commands::export_config(settings).await,
            Command::Import {
                source,
                from,
                dry_run,
            } => match (source.as_str(), from) {
                ("cch-ts", Some(url)) => {
                    claude_code_hub::app::wiring::import_cch_ts(settings, &url, dry_run).await
                }
                ("cch-ts", None) => Err(anyhow::anyhow!(
                    "cch import cch-ts needs --from postgres://… (the original's database)"
                )),
                (_, Some(_)) => Err(anyhow::anyhow!("--from only goes with cch-ts")),
                (file, None) => {
                    claude_code_hub::app::config_commands::import_config(settings, file, dry_run)
                        .await
                }
            },
        }
    });
    // Sends the spans still queued while the runtime (which carries the exporter's requests)
    // is alive.
    if let Some(t) = traces {
        t.shutdown();
    }
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("cch: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
