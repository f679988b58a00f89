//! `kefu`: the video customer-service server in one binary.

mod admin;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use kefu::{App, startup};
use kefu_signaling::cluster::config::NodeRole;
use kefu_signaling::rooms::token::{Side, unix_now};
use kefu_signaling::{KefuConfig, telemetry};

#[derive(Parser, Debug)]
#[command(name = "kefu", version, about = "Video customer-service media server")]
struct Cli {
    /// TOML configuration file (defaults, then this file, then KEFU_SECTION__KEY variables).
    #[arg(long, short, global = true, env = "KEFU_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (HTTP/WebSocket signaling, pages, SFU) until SIGINT or SIGTERM.
    Serve {
        /// What this node does: `all` (everything in one process, the default), or
        /// one part of a multi-node deployment.
        #[arg(long, value_enum, default_value_t = ServeRole::All)]
        role: ServeRole,
    },
    /// Print a page link with a fresh room token (uses the configured or stored key).
    Link {
        #[arg(long, default_value = "demo")]
        room: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Participant identity inside the room; defaults to the role name.
        #[arg(long)]
        name: Option<String>,
        /// Base URL of the server the link points at.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        base_url: String,
    },
    /// Operator commands on the database (enterprises, users, groups, passwords).
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
}

/// The parts a kefu node can play.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ServeRole {
    /// Signaling, SFU, recorder and the embedded stores in this one process.
    All,
    /// HTTP/WebSocket signaling only, with media on other nodes.
    Signaling,
    /// SFU and recorder only, driven by signaling nodes.
    Media,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum RoleArg {
    Agent,
    Customer,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = KefuConfig::load(cli.config.as_deref())?;
    telemetry::init(&config.log);
    match cli.command {
        Command::Serve { role } => {
            let role = match role {
                ServeRole::All => NodeRole::All,
                ServeRole::Signaling => NodeRole::Signaling,
                ServeRole::Media => NodeRole::Media,
            };
            serve(config, role).await
        }
        Command::Admin { command } => admin::run(&config, command).await,
        Command::Link {
            room,
            role,
            name,
            base_url,
        } => {
            let tokens = startup::token_keys(&config)?;
            let (role, page) = match role {
                RoleArg::Agent => (Side::Agent, "agent"),
                RoleArg::Customer => (Side::Customer, "customer"),
            };
            let name = name.unwrap_or_else(|| page.to_owned());
            let token = tokens.issue(&room, &name, role, unix_now());
            println!("{base_url}/{page}?token={token}");
            Ok(())
        }
    }
}

async fn serve(config: KefuConfig, role: NodeRole) -> anyhow::Result<()> {
    let rooms = config.signaling.rooms.clone();
    let app = App::build_as(config, role).await.context("starting kefu")?;
    println!("kefu is ready (role {})", role.name());
    println!("  http:  {}", app.base_url());
    match (app.media_addr(), app.media_bound_addr()) {
        (Some(at), Some(bound)) if at == bound => println!("  media: udp {at}"),
        (Some(at), Some(bound)) => println!("  media: udp {at} (bound at {bound})"),
        _ => println!("  media: on the cluster's media nodes"),
    }
    if let Some(internal) = app.internal_addr() {
        println!("  control API: {internal} (for signaling nodes only)");
    }
    if let Some(tcp) = app.media_tcp_addr() {
        println!("  media: tcp {tcp} (ICE-TCP)");
    }
    for room in rooms.iter().take(1) {
        let (agent, customer) = app.room_links(room);
        println!("  agent page:    {agent}");
        println!("  customer page: {customer}");
    }
    if let Some(creds) = app.bootstrap_credentials() {
        // Shown once, on the operator's console only (never logged): change it after login.
        println!("  first start: enterprise {} created", creds.main_account);
        println!(
            "  admin login: {}  one-time password: {}",
            creds.login, creds.password.0
        );
    }
    println!("  agent workbench: {}/workbench", app.base_url());
    println!("  admin console:   {}/admin", app.base_url());
    println!("press Ctrl-C to stop");
    app.run_until_stopped(stop_signal()).await
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
