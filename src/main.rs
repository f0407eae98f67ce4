//! The `switchyard` command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard::config;
use switchyard::pipeline::Pipeline;
use switchyard_filters::Registry;

const DEFAULT_CONFIG: &str = "conf/gateway.yaml";

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Routes each API request to the right versioned backend"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Worker threads per listener; overrides `server.threads`.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
        threads: Option<u16>,
    },
    /// Run the versioned-routing lab end to end: echo apps, gateway, the lab's requests.
    Demo {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Validate a config and print what it does.
    Check {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Run the versioned echo app (a backend for demos, tests and benches).
    Echo {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
        threads: u16,
    },
}

fn init_logging(default_level: &str) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .format_target(false)
        .init();
}

fn compile(path: &Path) -> Result<Pipeline, config::ConfigError> {
    let loaded = config::load(path)?;
    Pipeline::compile(&loaded, &Registry::with_builtins())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match compile(&config) {
            Ok(pipeline) => {
                print!("{}", switchyard::check::summary(&pipeline));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run { config, threads } => {
            init_logging("info");
            let pipeline = match compile(&config) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            match switchyard::server::run(pipeline, threads.map(usize::from)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo { config } => {
            let pipeline = match compile(&config) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let scenarios = switchyard::demo::header_scenarios();
            match switchyard::demo::run(&config, &pipeline, &scenarios) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Echo {
            listen,
            name,
            threads,
        } => {
            init_logging("warn");
            switchyard::echo::run(listen, &name, usize::from(threads))
        }
    }
}
