//! `barge create`: the flags shared with `run`, and making the container (pulling its image
//! first when needed).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use barge_engine::config::{self, ContainerConfig, MountSpec, RestartPolicy};
use barge_engine::create::CreateOptions;
use barge_engine::db::ContainerRecord;
use barge_engine::pull::{PullNeed, PullOptions, PullPolicy, PullProgress};
use barge_engine::Engine;

use super::Ctx;

#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables (KEY=VALUE, or KEY to take ours).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Bind mount (/host:/ctr[:ro]) or volume (name:/ctr, or /ctr for an anonymous one).
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name.
    #[arg(long, short = 'h')]
    pub hostname: Option<String>,
    /// Set metadata on the container (KEY=VALUE).
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels.
    #[arg(long = "label-file")]
    pub label_file: Vec<PathBuf>,
    /// Restart policy: no, on-failure[:max-retries], always, unless-stopped.
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Memory limit (e.g. 512m).
    #[arg(short, long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Number of CPUs.
    #[arg(long, allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// Tune the container's pids limit (-1 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Mount the container's root filesystem as read only.
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Add Linux capabilities.
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Security options: seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false].
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// Network: a network's name (default: barge, also called bridge), none, host, or
    /// container:NAME|ID.
    #[arg(long, alias = "net", default_value = "")]
    pub network: String,
    /// Names this container is known by on its network (user-defined networks).
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 or IPv6 address for the container on its network.
    #[arg(long = "ip", alias = "ip6")]
    pub ip: Option<String>,
    /// Publish a container's port(s): [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO].
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random host ports.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports (PORT[/PROTO]).
    #[arg(long)]
    pub expose: Vec<String>,
    /// DNS servers (instead of the host's).
    #[arg(long)]
    pub dns: Vec<String>,
    /// DNS search domains ("." for none).
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// DNS options.
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Add a line to /etc/hosts (HOST:IP).
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Pull image before creating: missing, always, never.
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Signal to stop the container.
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<u32>,
    /// Log driver options: max-size=10m, max-file=3.
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Run the container in an existing pod (it joins the pod's namespaces).
    #[arg(long)]
    pub pod: Option<String>,
    /// Make this a pod's init container: always (run at every pod start) or once.
    #[arg(long = "init-ctr", value_name = "always|once")]
    pub init_ctr: Option<String>,
    /// Platform of the image to pull.
    #[arg(long)]
    pub platform: Option<String>,
    /// Command to run to check health (run with /bin/sh -c in the container).
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 30s).
    #[arg(long = "health-interval", allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 30s).
    #[arg(long = "health-timeout", allow_hyphen_values = true)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy (default 3).
    #[arg(long = "health-retries", allow_hyphen_values = true)]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before failures count (ms|s|m|h)
    /// (default 0s).
    #[arg(long = "health-start-period", allow_hyphen_values = true)]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 5s).
    #[arg(long = "health-start-interval", allow_hyphen_values = true)]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// The image to run.
    pub image: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

impl CreateArgs {
    /// Check and convert the flags; every bad value is named.
    pub fn options(&self, autoremove: bool) -> Result<CreateOptions> {
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(config::parse_env_file(f)?);
        }
        for e in &self.env {
            env.push(config::expand_env(e).map_err(|m| anyhow::anyhow!("-e: {m}"))?);
        }
        let labels = config::labels::labels_from_args(&self.label_file, &self.label)?;
        let security = config::security::parse_security_opts(&self.security_opt)?;
        let log = config::logging::parse_log_opts(&self.log_opt)?;
        let restart = RestartPolicy::parse(&self.restart).map_err(anyhow::Error::msg)?;
        if autoremove && restart != RestartPolicy::No {
            bail!("conflicting options: cannot specify both --restart and --rm");
        }
        PullPolicy::parse(&self.pull)?;
        let healthcheck = barge_engine::health::HealthFlags {
            cmd: self.health_cmd.clone(),
            interval: self.health_interval.clone(),
            timeout: self.health_timeout.clone(),
            start_period: self.health_start_period.clone(),
            start_interval: self.health_start_interval.clone(),
            retries: self.health_retries,
            no_healthcheck: self.no_healthcheck,
        }
        .check()?;
        let entrypoint = self.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            }
        });
        let config = ContainerConfig {
            image: self.image.clone(),
            env,
            working_dir: self.workdir.clone().unwrap_or_default(),
            user: self.user.clone().unwrap_or_default(),
            hostname: self.hostname.clone().unwrap_or_default(),
            labels,
            tty: self.tty,
            open_stdin: self.interactive,
            restart,
            autoremove,
            mounts: self
                .volume
                .iter()
                .map(|v| MountSpec::parse(v))
                .collect::<Result<_, _>>()?,
            memory: self
                .memory
                .as_deref()
                .map(|m| config::parse_bytes("-m, --memory", m))
                .transpose()?,
            cpus: self.cpus.as_deref().map(config::parse_cpus).transpose()?,
            pids_limit: self.pids_limit.filter(|p| *p > 0),
            read_only: self.read_only,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            privileged: self.privileged,
            seccomp: security.seccomp,
            no_new_privileges: security.no_new_privileges,
            init: self.init,
            network: self.network.clone(),
            networks: if self.network_alias.is_empty() && self.ip.is_none() {
                Vec::new()
            } else {
                vec![barge_engine::config::Endpoint {
                    network: String::new(),
                    aliases: self.network_alias.clone(),
                    ip: self.ip.clone(),
                }]
            },
            ports: {
                let mut v = Vec::new();
                for p in &self.publish {
                    v.extend(barge_engine::network::ports::PortSpec::parse(p)?);
                }
                v
            },
            publish_all: self.publish_all,
            exposed: self.expose.clone(),
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            dns_options: self.dns_option.clone(),
            extra_hosts: self.add_host.clone(),
            stop_signal: self.stop_signal.clone().unwrap_or_default(),
            stop_timeout: self.stop_timeout,
            log_max_size: log.max_size,
            log_max_files: log.max_files,
            pod: self.pod.clone(),
            init_container: match self.init_ctr.as_deref() {
                None => false,
                Some("always") | Some("once") => true,
                Some(o) => bail!("--init-ctr {o:?}: use always or once"),
            },
            healthcheck,
            ..Default::default()
        };
        Ok(CreateOptions {
            name: self.name.clone(),
            entrypoint,
            cmd: self.command.clone(),
            config,
        })
    }
}

/// Pull the image if `--pull` says so, then create the container.
pub fn create(
    engine: &Arc<Engine>,
    args: &CreateArgs,
    opts: CreateOptions,
) -> Result<ContainerRecord> {
    let need = engine.pull_needed(&args.image, PullPolicy::parse(&args.pull)?)?;
    if need != PullNeed::No {
        if need == PullNeed::Missing {
            eprintln!("Unable to find image '{}' locally", args.image);
        }
        let mut pull = PullOptions {
            platform: args.platform.clone(),
            progress: PullProgress::Terminal,
            ..Default::default()
        };
        let pulled = engine
            .pull(&args.image, &mut pull)
            .with_context(|| format!("pull {}", args.image))?;
        eprintln!("Digest: {}", pulled.digest);
        eprintln!("Status: {}", pulled.status());
        eprintln!("{}", pulled.name);
    }
    Ok(engine.create(opts)?)
}

#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Print help (-h is --hostname, as in docker).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    #[command(flatten)]
    pub create: CreateArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<i32> {
    let engine = ctx.engine()?;
    let opts = args.create.options(false)?;
    let rec = create(&engine, &args.create, opts)?;
    println!("{}", rec.id);
    Ok(0)
}
