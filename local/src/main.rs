//! `meters-local`: run the Meters API on this machine, or print a development token for it.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use meters::auth::TokenIssuer;
use meters::config::Env;
use meters::domain::meter::AccountId;
use meters::http::request_deadline;
use meters::store::dynamodb::DynamoDbConfig;
use meters_local::{Cors, CorsPolicy, Limits, Storage, auth_config, serve_with, start};

const USAGE: &str = "\
meters-local: the Meters API in one process, for local development

USAGE:
    meters-local [serve] [--bind ADDR] [--port N] [--data-dir DIR] [--memory] [--cors-origin ORIGIN ...]
    meters-local token --account UUID [--account UUID ...] [--ttl 1h] [--data-dir DIR]
    meters-local table-definition    the DynamoDB table it needs, as CloudFormation properties (JSON)
    meters-local error-codes         every error envelope's `code`, its status and meaning (JSON)
    meters-local cors-policy         the methods and headers cross-origin callers may use and read (JSON)
    meters-local facts               the numbers the code holds that the docs name (JSON), checked against them
    meters-local routes              the route table: method, path and function of each endpoint (JSON)
    meters-local reading-attributes  the attributes a reading's write names (JSON): its IAM policy's list

While it serves, `POST /local/readings` from this machine takes readings as the stack's readings queue does:
one message (Content-Type: application/json) or one per line (application/x-ndjson); docs/readings.md.

OPTIONS:
    --bind ADDR      address to listen on (default 127.0.0.1)
    --port N         port to listen on (default 3000; 0 picks a free one)
    --data-dir DIR   where the embedded store and the development secret live (default .meters-local)
    --memory         keep meters in memory only; they are gone when the server stops
    --cors-origin ORIGIN
                     let browser pages from this origin (https://app.example.com) call the API; repeat
                     for several, `*` for any. Adds to CORS_ALLOWED_ORIGINS. Default: none
    --account UUID   an account the token may act for (repeat for several)
    --ttl DURATION   how long the token lives: 90s, 15m, 1h, 7d (default 1h)

ENVIRONMENT:
    JWT_SECRET, or JWT_ALGORITHM + JWT_PUBLIC_KEY, or JWT_JWKS_URL (+ JWT_ALGORITHM), or AUTH_MODE=gateway;
    JWT_ISSUER, JWT_AUDIENCE (comma-separated), JWT_ACCOUNTS_CLAIM: token checks, as in the functions;
        with none of the key sources a development secret is generated and kept in the data folder
    DYNAMODB_ENDPOINT, TABLE_NAME: serve from DynamoDB (Local) instead of the embedded store
    CORS_ALLOWED_ORIGINS: origins allowed to call from a browser, comma-separated (as the template's
        CorsAllowedOrigins parameter)
    RUST_LOG: log level (default info)
";

#[derive(Debug)]
struct Options {
    command: Command,
    bind: IpAddr,
    port: u16,
    data_dir: PathBuf,
    memory: bool,
    accounts: Vec<AccountId>,
    ttl: Duration,
    cors: Cors,
}

#[derive(Debug, PartialEq, Eq)]
enum Command {
    Serve,
    Token,
    TableDefinition,
    ErrorCodes,
    CorsPolicy,
    Facts,
    Routes,
    ReadingAttributes,
    Help,
}

// Hand-written rather than clap: five options and a subcommand. Measured, clap's derive would replace about
// 60 lines here but add 9 s to a clean release build, ~265 KB to the binary and six crates to audit.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        command: Command::Serve,
        bind: IpAddr::from([127, 0, 0, 1]),
        port: 3000,
        data_dir: PathBuf::from(".meters-local"),
        memory: false,
        accounts: Vec::new(),
        ttl: Duration::from_secs(3600),
        cors: Cors::default(),
    };
    let mut args = args.into_iter().peekable();
    match args.peek().map(String::as_str) {
        Some("serve") => {
            args.next();
        }
        Some("token") => {
            args.next();
            options.command = Command::Token;
        }
        Some("table-definition") => {
            args.next();
            options.command = Command::TableDefinition;
        }
        Some("error-codes") => {
            args.next();
            options.command = Command::ErrorCodes;
        }
        Some("cors-policy") => {
            args.next();
            options.command = Command::CorsPolicy;
        }
        Some("facts") => {
            args.next();
            options.command = Command::Facts;
        }
        Some("routes") => {
            args.next();
            options.command = Command::Routes;
        }
        Some("reading-attributes") => {
            args.next();
            options.command = Command::ReadingAttributes;
        }
        _ => {}
    }
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--bind" => {
                options.bind = value("--bind")?
                    .parse()
                    .map_err(|_| "--bind needs an IP address".to_owned())?
            }
            "--port" => {
                options.port = value("--port")?
                    .parse()
                    .map_err(|_| "--port needs a number from 0 to 65535".to_owned())?
            }
            "--data-dir" => options.data_dir = PathBuf::from(value("--data-dir")?),
            "--memory" => options.memory = true,
            "--account" => options.accounts.push(
                AccountId::parse(&value("--account")?).map_err(|e| format!("--account: {e}"))?,
            ),
            "--ttl" => options.ttl = parse_ttl(&value("--ttl")?)?,
            "--cors-origin" => {
                let origin = Cors::new([value("--cors-origin")?]).map_err(|e| e.to_string())?;
                options.cors = std::mem::take(&mut options.cors).with(origin);
            }
            "-h" | "--help" | "help" => options.command = Command::Help,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if options.command == Command::Token && options.accounts.is_empty() {
        return Err("token needs at least one --account UUID".into());
    }
    Ok(options)
}

fn parse_ttl(raw: &str) -> Result<Duration, String> {
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let seconds_per_unit = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("--ttl `{raw}`: use a number with s, m, h or d")),
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n.saturating_mul(seconds_per_unit))),
        _ => Err(format!(
            "--ttl `{raw}`: use a positive number with s, m, h or d"
        )),
    }
}

// jemalloc returns the pages a released listing held (after its 10 s decay); glibc's allocator kept them, so the
// server's memory never came back when idle (BENCHMARKS.md, "Under writes").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // Purging runs on jemalloc's own thread, so it happens when no request allocates too.
    if let Err(error) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("meters-local: jemalloc's background purging is off ({error})");
    }
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("meters-local: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match options.command {
        Command::Help => {
            print!("{USAGE}");
            Ok(())
        }
        Command::Token => print_token(&options),
        Command::TableDefinition => print_table_definition(),
        Command::ErrorCodes => print_error_codes(),
        Command::CorsPolicy => print_json(&CorsPolicy::standard()),
        Command::Facts => print_json(&facts()),
        Command::Routes => print_json(
            &meters::Endpoint::ALL
                .map(|e| serde_json::json!({"method": e.method(), "route": e.route(), "function": e.function()})),
        ),
        Command::ReadingAttributes => print_json(&meters::store::dynamodb::READING_ATTRIBUTES),
        Command::Serve => run_server(&options).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("meters-local: {message}");
            ExitCode::FAILURE
        }
    }
}

fn print_token(options: &Options) -> Result<(), String> {
    let (config, _) = auth_config(&options.data_dir).map_err(|e| e.to_string())?;
    let issuer = TokenIssuer::new(&config).map_err(|e| e.to_string())?;
    let token = issuer
        .issue(&options.accounts, options.ttl)
        .map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(())
}

/// The schema the store creates its table from, for `scripts/tests/test_template_storage.py` and for whoever makes the
/// table by hand.
fn print_table_definition() -> Result<(), String> {
    let definition = meters::store::dynamodb::table_definition();
    let json = serde_json::to_string_pretty(&definition).map_err(|e| e.to_string())?;
    println!("{json}");
    Ok(())
}

fn print_json(value: &impl serde::Serialize) -> Result<(), String> {
    let json = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    println!("{json}");
    Ok(())
}

/// The error codes clients branch on, for `scripts/check_openapi.py` (openapi.yaml's enum, docs/api.md's table).
/// The numbers the code holds that the docs name, each once: `scripts/tests/test_docs_facts.py` checks every
/// "`NAME` (value)" in README.md and docs/ against them, and that each is named somewhere.
fn facts() -> std::collections::BTreeMap<&'static str, u64> {
    use meters::store::dynamodb as table;
    [
        (
            "TRANSACTION_ATTEMPTS",
            u64::from(table::TRANSACTION_ATTEMPTS),
        ),
        ("RECENT_CAP", table::RECENT_CAP as u64),
        ("SNAPSHOT_EVERY_WRITES", table::SNAPSHOT_EVERY_WRITES),
        ("ID_BLOCK", table::ID_BLOCK as u64),
        ("LOG_DAYS", table::LOG_DAYS as u64),
        ("MAX_LOG_WRITES", table::MAX_LOG_WRITES),
        (
            "MAX_SNAPSHOT_METERS",
            meters::store::snapshots::MAX_SNAPSHOT_METERS as u64,
        ),
        (
            "DEFAULT_CACHE_MIB",
            (meters::store::listing::DEFAULT_CACHE_BYTES >> 20) as u64,
        ),
        (
            "DEFAULT_DEADLINE_MS",
            meters::http::DEFAULT_DEADLINE.as_millis() as u64,
        ),
        (
            "MAX_BODY_KIB",
            (meters::http::request::MAX_BODY_BYTES / 1024) as u64,
        ),
        (
            "IDEMPOTENCY_TTL_HOURS",
            meters::store::IDEMPOTENCY_TTL.as_secs() / 3600,
        ),
        ("MAX_LIMIT", meters::domain::list::MAX_LIMIT as u64),
        ("DEFAULT_LIMIT", meters::domain::list::DEFAULT_LIMIT as u64),
        (
            "MAX_QUERY_CHARS",
            meters::domain::list::MAX_QUERY_CHARS as u64,
        ),
        ("LEEWAY_SECONDS", meters::auth::LEEWAY_SECONDS),
        ("MIN_SECRET_BYTES", meters::auth::MIN_SECRET_BYTES as u64),
        (
            "JWKS_REFRESH_INTERVAL_SECONDS",
            meters::auth::REFRESH_INTERVAL.as_secs(),
        ),
        (
            "JWKS_FETCH_TIMEOUT_SECONDS",
            meters::auth::FETCH_TIMEOUT.as_secs(),
        ),
        (
            "CHANGE_EVENT_SCHEMA_VERSION",
            u64::from(meters::events::SCHEMA_VERSION),
        ),
        (
            "LIST_READINGS_BOUND_SECONDS",
            meters::domain::reading::LIST_READINGS_BOUND_SECONDS,
        ),
        (
            "READINGS_IN_FLIGHT",
            meters::readings::READINGS_IN_FLIGHT as u64,
        ),
    ]
    .into_iter()
    .collect()
}

fn print_error_codes() -> Result<(), String> {
    let codes: Vec<serde_json::Value> = meters::http::error::ERROR_CODES
        .iter()
        .map(|(code, status, meaning)| serde_json::json!({"code": code, "status": status, "meaning": meaning}))
        .collect();
    let json = serde_json::to_string_pretty(&codes).map_err(|e| e.to_string())?;
    println!("{json}");
    Ok(())
}

async fn run_server(options: &Options) -> Result<(), String> {
    meters::telemetry::init();
    let env = Env::process();
    let storage = match env.get("DYNAMODB_ENDPOINT") {
        Some(_) => Storage::DynamoDb(
            DynamoDbConfig::read_with_table(&env, Some("meters-local"))
                .map_err(|e| e.to_string())?,
        ),
        None if options.memory => Storage::Memory,
        None => Storage::Embedded(options.data_dir.clone()),
    };
    let (auth, development_secret) = auth_config(&options.data_dir).map_err(|e| e.to_string())?;
    let deadline = request_deadline(&env).map_err(|e| e.to_string())?;
    let cors = match env.get("CORS_ALLOWED_ORIGINS") {
        Some(list) => Cors::from_list(&list).map_err(|e| format!("CORS_ALLOWED_ORIGINS: {e}"))?,
        None => Cors::default(),
    }
    .with(options.cors.clone());
    let (listener, app) = start(&storage, &auth, SocketAddr::new(options.bind, options.port))
        .await
        .map_err(|e| e.to_string())?;
    let app = app.with_deadline(deadline);
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    if development_secret {
        tracing::warn!(
            secret_file = %options.data_dir.join("dev-jwt-secret").display(),
            "JWT_SECRET is not set: using a generated development secret. Never use it in production. \
             Get a token with: meters-local token --account <uuid>"
        );
    }
    let store = match &storage {
        Storage::Embedded(dir) => format!("embedded at {}", dir.join("meters.redb").display()),
        Storage::Memory => "in memory (lost on exit)".into(),
        Storage::DynamoDb(config) => format!(
            "DynamoDB table {} at {}",
            config.table_name,
            config.endpoint.as_deref().unwrap_or("AWS")
        ),
    };
    tracing::info!(url = %format!("http://{address}/api/v1/meters"), store = %store, auth_mode = auth.key.describe(), "Meters API listening");
    serve_with(listener, app, shutdown_signal(), Limits::default(), cors)
        .await
        .map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut terminate) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return interrupt.await.unwrap_or_default();
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn with_no_arguments_it_serves_on_loopback_port_3000() {
        let options = parse(&[]).unwrap();
        assert_eq!(options.command, Command::Serve);
        assert_eq!(
            SocketAddr::new(options.bind, options.port).to_string(),
            "127.0.0.1:3000"
        );
        assert_eq!(options.data_dir, PathBuf::from(".meters-local"));
        assert!(!options.memory);
        assert!(
            !options.cors.is_enabled(),
            "no origin is allowed unless named"
        );
    }

    #[test]
    fn cors_origins_are_repeatable_and_checked() {
        let options = parse(&[
            "--cors-origin",
            "http://localhost:5173",
            "--cors-origin",
            "https://app.example.com",
        ])
        .unwrap();
        assert_eq!(
            options.cors,
            meters_local::Cors::from_list("http://localhost:5173,https://app.example.com").unwrap()
        );
        assert!(
            parse(&["--cors-origin", "localhost:5173"])
                .unwrap_err()
                .contains("not an origin")
        );
    }

    #[test]
    fn token_needs_an_account_and_takes_a_ttl() {
        assert!(parse(&["token"]).is_err());
        let options = parse(&[
            "token",
            "--account",
            "6F1C2B1E-0D7A-4C55-9A43-4F0B8D3A1E22",
            "--ttl",
            "15m",
        ])
        .unwrap();
        assert_eq!(
            options.accounts[0].to_string(),
            "6f1c2b1e-0d7a-4c55-9a43-4f0b8d3a1e22"
        );
        assert_eq!(options.ttl, Duration::from_secs(900));
    }

    #[test]
    fn ttls_take_seconds_minutes_hours_or_days() {
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("2d").unwrap(), Duration::from_secs(172_800));
        for bad in ["", "0", "1w", "h", "-1h"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_arguments_are_refused() {
        assert_eq!(
            parse(&["--prot", "1"]).unwrap_err(),
            "unknown argument `--prot`"
        );
        assert!(parse(&["--port", "http"]).is_err());
    }
}
