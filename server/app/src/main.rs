//! The `makker` command.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use makker::config::Config;
use makker::{admin, demo};

/// jemalloc rather than glibc's malloc: under a flood of check-ins glibc's malloc and free
/// took about a tenth of all CPU (`perf`); with jemalloc the same server acknowledged 18 % more
/// check-ins a second. It returns freed memory after 1 s (`.cargo/config.toml`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "makker",
    version,
    about = "Makker: a safety system for street-outreach workers"
)]
struct Cli {
    /// The configuration file (settings from MAKKER_* environment variables win).
    #[arg(long, global = true, default_value = "makker.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
enum Command {
    /// Serve the API.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Seed a fictional team in Aarhus into a local SQLite file (once) and serve it.
    Demo,
    /// Administrative commands.
    #[command(subcommand)]
    Admin(Admin),
    /// Configuration commands.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Write a consistent copy of the database while the server runs (SQLite: VACUUM INTO;
    /// PostgreSQL: pg_dump's custom format).
    Backup {
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore a backup into an empty database (the server stopped, for SQLite).
    Restore {
        #[arg(long)]
        from: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print it, secrets redacted.
    Check,
    /// Print the reference of every setting (Markdown), as in ops/CONFIG.md.
    Reference,
}

#[derive(Subcommand)]
enum Admin {
    /// Create a team.
    CreateTeam {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "Europe/Copenhagen")]
        time_zone: String,
    },
    /// Create a person. Secrets not given as options are not set.
    CreatePerson {
        #[arg(long)]
        username: String,
        #[arg(long)]
        name: String,
        /// worker, supervisor, manager or admin
        #[arg(long)]
        role: String,
        /// Team id or name; repeat for several.
        #[arg(long = "team")]
        teams: Vec<String>,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long, default_value = "da")]
        lang: String,
        #[arg(long, env = "MAKKER_NEW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[arg(long, env = "MAKKER_NEW_PIN", hide_env_values = true)]
        pin: Option<String>,
        #[arg(long, env = "MAKKER_NEW_DURESS_PIN", hide_env_values = true)]
        duress_pin: Option<String>,
    },
    /// Set a password, read from standard input (one line).
    SetPassword {
        #[arg(long)]
        username: String,
    },
    /// Issue a device token for a phone; it is printed once.
    IssueToken {
        #[arg(long)]
        username: String,
        #[arg(long, default_value = "issued by admin")]
        device_name: String,
    },
    /// Revoke a device token.
    RevokeToken {
        #[arg(long)]
        device: uuid::Uuid,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("makker: {e}");
            return ExitCode::from(2);
        }
    };
    if matches!(cli.command, Command::Demo) && std::env::var_os("MAKKER_DATABASE_URL").is_none() {
        config.database_url = "sqlite://makker-demo.db".into();
    }
    makker::telemetry::init(config.log_format);
    let _failpoints = makker_engine::failpoints();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(makker::web_yields)
        .build()
        .expect("BUG: a tokio runtime starts");
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("makker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Config(ConfigCommand::Reference) => {
            print!("{}", makker::config::reference());
            Ok(())
        }
        Command::Config(ConfigCommand::Check) => {
            print!("{}", config.redacted_toml());
            eprintln!("configuration ok");
            Ok(())
        }
        Command::Backup { to } => {
            makker::backup::backup(&config.database_url, &to).await?;
            eprintln!("backup written to {}", to.display());
            Ok(())
        }
        Command::Restore { from } => {
            makker::backup::restore(&config.database_url, &from).await?;
            eprintln!("restored from {}", from.display());
            Ok(())
        }
        Command::Migrate => {
            makker::open_store(&config.database_url).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Serve => {
            let _lock = makker::lock_sqlite(&config.database_url)?;
            let engine = makker::engine(&config).await?;
            makker::serve(makker::bind(&config).await?, engine, &config).await
        }
        Command::Demo => {
            let _lock = makker::lock_sqlite(&config.database_url)?;
            let engine = makker::engine(&config).await?;
            if demo::seed(&engine).await? {
                eprintln!("seeded the demo team into {}", config.database_url);
            }
            let listener = makker::bind(&config).await?;
            let address = listener.local_addr()?.to_string();
            println!("{}", demo::welcome(&address));
            let engine = demo::quick(engine);
            let alarm = demo::miss_a_check_out(&engine).await?;
            println!("{}", demo::watch(&address, &alarm));
            makker::serve(listener, engine, &config).await
        }
        Command::Admin(cmd) => {
            let engine = makker::engine(&config).await?;
            run_admin(&engine, cmd).await
        }
    }
}

async fn run_admin(engine: &makker_engine::Engine, cmd: Admin) -> anyhow::Result<()> {
    match cmd {
        Admin::CreateTeam { name, time_zone } => {
            let team = admin::create_team(engine, &name, &time_zone).await?;
            println!("{}", team.id);
        }
        Admin::CreatePerson {
            username,
            name,
            role,
            teams,
            phone,
            lang,
            password,
            pin,
            duress_pin,
        } => {
            let args = admin::PersonArgs {
                username,
                name,
                role,
                teams,
                phone,
                lang,
                password,
                pin,
                duress_pin,
            };
            let person = admin::create_person(engine, args).await?;
            println!("{}", person.id);
        }
        Admin::SetPassword { username } => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            admin::set_password(engine, &username, line.trim_end_matches(['\r', '\n'])).await?;
            eprintln!("password set");
        }
        Admin::IssueToken {
            username,
            device_name,
        } => {
            let (token, device) = admin::issue_token(engine, &username, &device_name).await?;
            println!("{token}");
            eprintln!("device {device}: the token is shown only this once");
        }
        Admin::RevokeToken { device } => {
            admin::revoke_token(engine, device).await?;
            eprintln!("device {device} revoked");
        }
    }
    Ok(())
}
