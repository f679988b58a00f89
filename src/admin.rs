//! `kefu admin …`: operator commands against the configured database.

use std::io::BufRead;
use std::time::Duration;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use kefu::startup;
use kefu_signaling::KefuConfig;
use kefu_signaling::accounts::UserRole;
use kefu_signaling::accounts::admin::{self, UserSpec};
use kefu_signaling::clock::now_ms;
use kefu_signaling::cluster::config::ClusterBackend;
use kefu_signaling::cluster::redis::{RedisCluster, RedisNodes};
use kefu_signaling::store::Store;

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create an enterprise (tenant).
    CreateEnterprise {
        #[arg(long)]
        name: String,
        /// The public number customers see (digits).
        #[arg(long)]
        main_account: String,
    },
    /// Create an agent or admin. Prints a generated password unless --password-stdin.
    CreateUser {
        /// The enterprise's main account.
        #[arg(long)]
        enterprise: String,
        #[arg(long)]
        login: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long)]
        name: String,
        /// Read the resident ID number (stored encrypted, shown masked) from the first
        /// line of standard input, so it stays out of shell history and process lists.
        /// With --password-stdin the password is the next line.
        #[arg(long)]
        id_number_stdin: bool,
        /// Concurrent calls an agent takes at most.
        #[arg(long, default_value_t = 1)]
        capacity: u32,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Create a reception group.
    CreateGroup {
        #[arg(long)]
        enterprise: String,
        #[arg(long)]
        name: String,
    },
    /// Add an agent to a reception group of their enterprise.
    AddToGroup {
        #[arg(long)]
        login: String,
        #[arg(long)]
        group: String,
    },
    /// Turn call recording on or off for an enterprise (on by default). Agents cannot.
    SetRecording {
        /// The enterprise's main account.
        #[arg(long)]
        enterprise: String,
        #[arg(long, action = clap::ArgAction::Set)]
        enabled: bool,
    },
    /// How long a customer's request may wait in all (queue and rings) before it times
    /// out (default 300 s). Declined or unanswered requests go to the next agent until then.
    SetRequestWait {
        /// The enterprise's main account.
        #[arg(long)]
        enterprise: String,
        #[arg(long)]
        secs: u32,
    },
    /// Set a password (generated and printed unless --password-stdin); ends the user's sessions.
    SetPassword {
        #[arg(long)]
        login: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove an agent or admin: they can no longer sign in, their sessions end, and
    /// their face reference (templates and kept photos) is deleted. Calls, recordings
    /// and records naming them stay under the enterprise's retention.
    RemoveUser {
        #[arg(long)]
        login: String,
    },
    /// Apply every enterprise's retention now (the server does it daily): deletes
    /// expired recordings, verification records, moderation incidents with their
    /// evidence, and face references, from the database and the object store.
    ApplyRetention,
    /// Ask a node of the cluster to drain: it takes no new calls and stops once its
    /// work is done (cluster.backend = "redis").
    Drain {
        /// The node's id (cluster.node_id, default its host name).
        node: String,
    },
    /// List the cluster's nodes with their load (cluster.backend = "redis").
    Nodes,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum RoleArg {
    Agent,
    Admin,
}

/// The cluster registry, from `[cluster]`.
async fn registry(config: &KefuConfig) -> anyhow::Result<RedisNodes> {
    anyhow::ensure!(
        config.cluster.backend == ClusterBackend::Redis,
        "this is a one-node configuration: cluster.backend is not \"redis\""
    );
    let redis = RedisCluster::connect(&config.cluster)
        .await
        .context("connecting to Redis (cluster.redis_url)")?;
    Ok(RedisNodes::new(
        redis,
        Duration::from_millis(config.cluster.node_timeout_ms),
    ))
}

/// The next line of standard input, when `from_stdin`; `what` names it in errors.
fn read_line(from_stdin: bool, what: &str) -> anyhow::Result<Option<String>> {
    if !from_stdin {
        return Ok(None);
    }
    let mut line = String::new();
    let read = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading the {what}"))?;
    anyhow::ensure!(read > 0, "standard input ended before the {what}");
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

fn read_password(from_stdin: bool) -> anyhow::Result<Option<String>> {
    read_line(from_stdin, "password")
}

pub async fn run(config: &KefuConfig, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        // Cluster commands talk to Redis only.
        AdminCommand::Drain { node } => {
            let nodes = registry(config).await?;
            anyhow::ensure!(
                nodes.request_drain(&node).await?,
                "no node {node} in the cluster registry (see `kefu admin nodes`)"
            );
            println!("node {node} asked to drain");
            Ok(())
        }
        AdminCommand::Nodes => {
            let view = registry(config).await?.view().await?;
            for (n, placed) in &view.live {
                println!(
                    "{}\t{}\t{}\tcalls {} (+{placed} placed)\tcpu {:.2}/{} cores\tbeauty {}\tscreened {}\t{}",
                    n.id,
                    n.role,
                    if n.draining { "draining" } else { "live" },
                    n.load.calls,
                    n.load.cpu_cores,
                    n.load.cores,
                    n.load.pipeline_streams,
                    n.load.screened_streams,
                    n.version,
                );
            }
            for id in &view.silent {
                println!("{id}\t-\tsilent");
            }
            Ok(())
        }
        command => run_on_database(config, command).await,
    }
}

async fn run_on_database(config: &KefuConfig, command: AdminCommand) -> anyhow::Result<()> {
    let store = Store::open(&config.database, &config.data_dir)
        .await
        .context("opening the database")?;
    let now = now_ms();
    match command {
        AdminCommand::CreateEnterprise { name, main_account } => {
            let e = admin::create_enterprise(&store, &name, &main_account, now).await?;
            println!("enterprise {} ({}) created", e.main_account, e.id);
        }
        AdminCommand::CreateUser {
            enterprise,
            login,
            role,
            name,
            id_number_stdin,
            capacity,
            password_stdin,
        } => {
            // Read in this order: the ID number first, then the password.
            let id_number = read_line(id_number_stdin, "ID number")?.map(kefu_proto::Pii::new);
            let key = startup::data_key(config)?;
            let spec = UserSpec {
                main_account: enterprise,
                login,
                role: match role {
                    RoleArg::Agent => UserRole::Agent,
                    RoleArg::Admin => UserRole::Admin,
                },
                real_name: name,
                id_number,
                password: read_password(password_stdin)?,
                capacity,
            };
            let (user, generated) = admin::create_user(&store, &key, &spec, now).await?;
            println!("{} {} created ({})", user.role, user.login, user.id);
            if let Some(password) = generated {
                println!("password: {password}");
            }
        }
        AdminCommand::CreateGroup { enterprise, name } => {
            let g = admin::create_group(&store, &enterprise, &name, now).await?;
            println!("group {} created ({})", g.name, g.id);
        }
        AdminCommand::SetRequestWait { enterprise, secs } => {
            admin::set_request_wait(&store, &enterprise, secs).await?;
            println!("requests of {enterprise} wait at most {} s", secs.max(1));
        }
        AdminCommand::SetRecording {
            enterprise,
            enabled,
        } => {
            admin::set_recording(&store, &enterprise, enabled).await?;
            let state = if enabled { "on" } else { "off" };
            println!("call recording {state} for enterprise {enterprise}");
        }
        AdminCommand::AddToGroup { login, group } => {
            admin::add_to_group(&store, &login, &group).await?;
            println!("{login} added to {group}");
        }
        AdminCommand::SetPassword {
            login,
            password_stdin,
        } => {
            let generated =
                admin::set_password(&store, &login, read_password(password_stdin)?, now).await?;
            println!("password of {login} set; their sessions are ended");
            if let Some(password) = generated {
                println!("password: {password}");
            }
        }
        AdminCommand::RemoveUser { login } => {
            let (user, _) = store
                .user_by_login(&login)
                .await?
                .with_context(|| format!("no user {login}"))?;
            let storage =
                kefu_signaling::recordings::start_storage(&config.storage, &config.data_dir)
                    .await?;
            let removed = kefu_signaling::accounts::removal::remove_user(
                &store,
                &storage.store,
                &user.id,
                now,
            )
            .await?;
            anyhow::ensure!(removed, "{login} was removed meanwhile");
            kefu_signaling::audit::record_unattended(
                &store,
                &user.enterprise_id,
                "operator",
                "agent_removed",
                user.id.as_str(),
                now,
            )
            .await?;
            println!(
                "{login} removed; their sessions are ended and their face reference deleted \
                 (this command does not end their calls in progress; the console's removal does)"
            );
        }
        AdminCommand::ApplyRetention => {
            let storage =
                kefu_signaling::recordings::start_storage(&config.storage, &config.data_dir)
                    .await?;
            let report = kefu_signaling::retention::enforce(&store, &storage.store, now).await?;
            for (enterprise, swept) in &report {
                println!(
                    "{}: recordings {}, verification records {}, incidents {}, face references {}, objects {} ({} left for the next run)",
                    enterprise.as_str(),
                    swept.recordings,
                    swept.verification_records,
                    swept.incidents,
                    swept.face_references,
                    swept.objects,
                    swept.objects_failed
                );
            }
            if report.is_empty() {
                println!("nothing has expired");
            }
        }
        AdminCommand::Drain { .. } | AdminCommand::Nodes => {
            unreachable!("cluster commands are answered by `run` before the database opens")
        }
    }
    store.close().await;
    Ok(())
}
