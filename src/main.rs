//! The `switchyard` command line.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard::config;
use switchyard::pipeline::Pipeline;
use switchyard_filters::{Background, Registry};

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
    /// Validate a config and print what it does.
    Check {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
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
    },
}

fn init_logging(default_level: &str) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .format_target(false)
        .init();
}

fn compile(path: &Path, background: Option<&Background>) -> Result<Pipeline, config::ConfigError> {
    let loaded = config::load(path)?;
    Pipeline::compile(&loaded, &Registry::with_builtins(), background)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match compile(&config, None) {
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
            let background = match switchyard::background_thread::start() {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: cannot start the background thread: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let pipeline = match compile(&config, Some(&background)) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            match switchyard::server::run(pipeline, threads.map(usize::from), background) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo { config } => {
            let pipeline = match compile(&config, None) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let key = config
                .parent()
                .unwrap_or(Path::new("."))
                .join("demo/jwt-demo-key.pem");
            let result = switchyard::demo::lab_scenarios(&key)
                .map_err(switchyard::demo::DemoError::from)
                .and_then(|scenarios| switchyard::demo::run(&config, &pipeline, &scenarios));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
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
            let pipeline = match compile(&config, None) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let described = switchyard::explain::Described {
                method: &method,
                path: &path,
                headers: &headers,
                token: token.as_deref(),
                client: source,
                listener: listener.as_deref(),
            };
            match switchyard::explain::explain(&pipeline, &described) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
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
            let minted = switchyard::token::parse_algorithm(&alg).and_then(|alg| {
                let spec = switchyard::token::TokenSpec {
                    key_pem: &key,
                    alg,
                    kid: kid.as_deref(),
                    issuer: iss.as_deref(),
                    audience: aud.as_deref(),
                    ttl: (!no_exp).then_some(ttl),
                    claims: &claims,
                };
                match count {
                    1 => switchyard::token::mint(&spec).map(|t| vec![t]),
                    n => switchyard::token::mint_many(&spec, n as usize),
                }
            });
            match minted {
                Ok(tokens) => {
                    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                    for token in tokens {
                        if writeln!(out, "{token}").is_err() {
                            return ExitCode::FAILURE;
                        }
                    }
                    if out.flush().is_err() {
                        return ExitCode::FAILURE;
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Echo {
            listen,
            name,
            threads,
            tls_cert,
            tls_key,
            tls_client_ca,
        } => {
            init_logging("warn");
            let tls = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => Some(switchyard::echo::TlsFiles {
                    cert,
                    key,
                    client_ca: tls_client_ca.as_deref(),
                }),
                _ => None,
            };
            switchyard::echo::run(listen, &name, usize::from(threads), tls)
        }
    }
}
