//! Options every subcommand shares, and logging set-up.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct GlobalOpts {
    /// Persistent state: images, layers, volumes, container dirs
    #[arg(
        long,
        env = "RSTACK_ROOT",
        default_value = "/var/lib/rstack",
        global = true
    )]
    pub root: PathBuf,
    /// Volatile state: supervisors, locks, netns files, container state
    #[arg(
        long = "run-root",
        env = "RSTACK_RUN",
        default_value = "/run/rstack",
        global = true
    )]
    pub run_root: PathBuf,
    /// Log level filter: error, warn, info, debug, trace, or
    /// `target=level` directives (`warn,rstack_stack=debug`)
    #[arg(
        long = "log-level",
        env = "RSTACK_LOG",
        default_value = "warn",
        global = true
    )]
    pub log_level: String,
    /// containers-registries.conf(5) file with mirrors, remaps and blocks
    /// (its drop-ins: FILE.d/*.conf) [default: /etc/containers/registries.conf]
    #[arg(
        long = "registries-conf",
        env = "RSTACK_REGISTRIES_CONF",
        value_name = "FILE",
        global = true
    )]
    pub registries_conf: Option<PathBuf>,
    /// Layers one image pull downloads at once (default: max-concurrent-downloads
    /// of ROOT/config.json, else 3)
    #[arg(
        long = "max-concurrent-downloads",
        env = "RSTACK_MAX_CONCURRENT_DOWNLOADS",
        value_name = "N",
        value_parser = clap::value_parser!(u16).range(1..),
        global = true
    )]
    pub max_concurrent_downloads: Option<u16>,
    #[command(flatten)]
    pub compose: ComposeOpts,
}

impl GlobalOpts {
    /// The image store under `--root`, with `--registries-conf` and
    /// `--max-concurrent-downloads`.
    pub fn store(&self) -> Result<rstack_images::Store, rstack_images::Error> {
        Ok(rstack_images::Store::open(&self.root)?
            .with_registries_conf(self.registries_conf.clone())
            .with_max_concurrent_downloads(self.max_concurrent_downloads.map(usize::from)))
    }

    /// This rstack binary with this invocation's global flags: for the
    /// processes rstack starts itself (a detached supervisor, the project
    /// commands of a single container).
    pub fn rstack_command(&self) -> std::io::Result<std::process::Command> {
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--run-root")
            .arg(&self.run_root)
            .arg("--log-level")
            .arg(&self.log_level);
        if let Some(c) = &self.registries_conf {
            cmd.arg("--registries-conf").arg(c);
        }
        if let Some(n) = self.max_concurrent_downloads {
            cmd.arg("--max-concurrent-downloads").arg(n.to_string());
        }
        Ok(cmd)
    }
}

/// The project options of `docker compose`. They stand before the
/// subcommand (`rstack -f a.yaml -p demo up`), as with docker compose.
#[derive(Debug, Args)]
pub struct ComposeOpts {
    /// Compose configuration files (repeatable; `-` reads standard input)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Profiles to enable (repeatable)
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Alternate environment files (repeatable)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Alternate working directory (default: the directory of the first compose file)
    #[arg(long = "project-directory", value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
}

/// Sets up `tracing` on stderr. Libraries only emit events; the subscriber
/// lives here, in the binary.
pub fn init_logging(opts: &GlobalOpts) {
    // libcgroups warns about every absent v1 controller and libcontainer
    // logs failures that rstack reports itself: quiet them unless asked.
    let mut directives = opts.log_level.clone();
    if !directives.contains("libc") && !matches!(directives.as_str(), "debug" | "trace") {
        directives.push_str(",libcgroups=error,libcontainer=off");
    }
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter: tracing_subscriber::filter::Targets = directives
        .parse()
        .unwrap_or_else(|_| "warn".parse().unwrap_or_default());
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false),
        )
        .with(filter)
        .init();
}

/// A multi-threaded tokio runtime for commands that do async I/O.
pub fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
