//! The `switchyard` command line.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard::config;
use switchyard::pipeline::Pipeline;
use switchyard_filters::{Background, Registry};

/// mimalloc, chosen by measurement (see the dependency in Cargo.toml and the README's
/// Performance section): a request allocates about a hundred times.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run the pipeline on a described request, offline, and say what each filter did and why.
    Explain {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// A request header, 'name: value' (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// A bearer token, sent as `authorization: Bearer <token>`.
        #[arg(long)]
        token: Option<String>,
        #[arg(long, default_value = "GET")]
        method: String,
        /// The client address the request comes from.
        #[arg(long, default_value = "127.0.0.1")]
        source: std::net::IpAddr,
        /// The listener to run (default: the first).
        #[arg(long)]
        listener: Option<String>,
        /// The request path, with its query string.
        path: String,
    },
    /// Validate a config and print what it does. Backend host names are looked up; one that
    /// does not resolve is a warning (the gateway resolves names while it runs).
    Check {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// A backend host name that does not resolve is an error.
        #[arg(long)]
        resolve: bool,
    },
    /// Mint a signed token (for tests and demos; the key is a PKCS#8 PEM private key).
    Token {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        kid: Option<String>,
        #[arg(long)]
        iss: Option<String>,
        #[arg(long)]
        aud: Option<String>,
        /// RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA.
        #[arg(long, default_value = "RS256")]
        alg: String,
        /// Lifetime: `exp` = now + ttl (e.g. 1h, 30s). `--no-exp` leaves `exp` out.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
        #[arg(long)]
        no_exp: bool,
        /// A claim as name=value; name may be a dotted path, value is JSON or a plain string.
        #[arg(long = "claim")]
        claims: Vec<String>,
        /// Mint this many tokens, one per line, each with its own `jti` (for load tests).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
        count: u32,
    },
    /// Run the versioned echo app (a backend for demos, tests and benches).
    Echo {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
        threads: u16,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<String>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<String>,
        /// Require a client certificate chaining to this PEM CA (mutual TLS).
        #[arg(long, requires = "tls_cert")]
        tls_client_ca: Option<String>,
        /// Also accept HTTP/2 with prior knowledge (h2c), in plaintext.
        #[arg(long, conflicts_with = "tls_cert")]
        h2c: bool,
    },
}

fn init_logging(default_level: &str) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .format_target(false)
        .init();
}

/// Why a command failed: the message for standard error, and the exit status.
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// The input was wrong (a config, a header, a claim): exit 2.
    fn input(message: impl std::fmt::Display) -> Self {
        Failure {
            message: message.to_string(),
            code: 2,
        }
    }

    /// The input was fine and running failed: exit 1.
    fn run(message: impl std::fmt::Display) -> Self {
        Failure {
            message: message.to_string(),
            code: 1,
        }
    }
}

/// Loads and compiles the config at `path`; a config that fails is the input's fault.
fn compile(path: &Path, background: Option<&Background>) -> Result<Pipeline, Failure> {
    let loaded = config::load(path).map_err(Failure::input)?;
    Pipeline::compile(&loaded, &Registry::with_builtins(), background).map_err(Failure::input)
}

fn main() -> ExitCode {
    match execute(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn execute(command: Command) -> Result<(), Failure> {
    match command {
        Command::Check { config, resolve } => {
            let pipeline = compile(&config, None)?;
            let lookups = switchyard::check::look_up_names(&pipeline);
            let unresolved = switchyard::check::unresolved(&pipeline, &lookups);
            if resolve && !unresolved.is_empty() {
                return Err(Failure::input(format!(
                    "{}: {}",
                    config.display(),
                    unresolved.join("; ")
                )));
            }
            print!("{}", switchyard::check::summary(&pipeline, &lookups));
            Ok(())
        }
        Command::Run { config, threads } => {
            init_logging("info");
            let background = switchyard::background_thread::start()
                .map_err(|e| Failure::run(format!("cannot start the background thread: {e}")))?;
            let pipeline = compile(&config, Some(&background))?;
            for warning in &pipeline.warnings {
                log::warn!("{warning}");
            }
            switchyard::server::run(pipeline, threads.map(usize::from), background)
                .map_err(Failure::run)
        }
        Command::Demo { config } => {
            let pipeline = compile(&config, None)?;
            let key = config
                .parent()
                .unwrap_or(Path::new("."))
                .join("demo/jwt-demo-key.pem");
            switchyard::lab::demo::lab_scenarios(&key)
                .map_err(switchyard::lab::demo::DemoError::from)
                .and_then(|scenarios| switchyard::lab::demo::run(&config, &pipeline, &scenarios))
                .map_err(Failure::run)
        }
        Command::Explain {
            config,
            headers,
            token,
            method,
            source,
            listener,
            path,
        } => {
            let pipeline = compile(&config, None)?;
            let described = switchyard::explain::Described {
                method: &method,
                path: &path,
                headers: &headers,
                token: token.as_deref(),
                client: source,
                listener: listener.as_deref(),
            };
            let report =
                switchyard::explain::explain(&pipeline, &described).map_err(Failure::input)?;
            print!("{report}");
            Ok(())
        }
        Command::Token {
            key,
            kid,
            iss,
            aud,
            alg,
            ttl,
            no_exp,
            claims,
            count,
        } => {
            let alg = switchyard::lab::token::parse_algorithm(&alg).map_err(Failure::input)?;
            let spec = switchyard::lab::token::TokenSpec {
                key_pem: &key,
                alg,
                kid: kid.as_deref(),
                issuer: iss.as_deref(),
                audience: aud.as_deref(),
                ttl: (!no_exp).then_some(ttl),
                claims: &claims,
            };
            let tokens = match count {
                1 => switchyard::lab::token::mint(&spec).map(|t| vec![t]),
                n => switchyard::lab::token::mint_many(&spec, n as usize),
            }
            .map_err(Failure::input)?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            tokens
                .iter()
                .try_for_each(|token| writeln!(out, "{token}"))
                .and_then(|()| out.flush())
                .map_err(|e| Failure::run(format!("cannot write the tokens: {e}")))
        }
        Command::Echo {
            listen,
            name,
            threads,
            tls_cert,
            tls_key,
            tls_client_ca,
            h2c,
        } => {
            init_logging("warn");
            let tls = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => Some(switchyard::lab::echo::TlsFiles {
                    cert,
                    key,
                    client_ca: tls_client_ca.as_deref(),
                }),
                _ => None,
            };
            match switchyard::lab::echo::run(listen, &name, usize::from(threads), tls, h2c) {
                Err(e) => Err(Failure::input(e)),
            }
        }
    }
}
