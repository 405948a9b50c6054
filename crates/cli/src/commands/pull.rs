//! `rstack pull`: like `docker pull`, with one progress bar per layer on a
//! terminal and one line per layer state change otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rstack_images::{LayerEvent, Platform, PullOptions, PullProgress, Reference};

use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Suppress verbose output (print only the image name)
    #[arg(short, long)]
    pub quiet: bool,
    /// Platform of a multi-platform image (os/arch[/variant])
    #[arg(long, env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Image to pull: NAME[:TAG|@DIGEST]; none = the project's service
    /// images (`rstack compose pull`)
    pub image: Option<String>,
}

/// `pull IMAGE`'s arguments.
struct Image {
    quiet: bool,
    platform: Option<String>,
    image: String,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let Some(image) = args.image else {
        return super::compose_pull::run(
            global,
            super::compose_pull::Args {
                quiet: args.quiet,
                ignore_pull_failures: false,
                ignore_buildable: false,
                include_deps: false,
                policy: super::compose_pull::Policy::Always,
                services: Vec::new(),
            },
        );
    };
    let args = Image {
        quiet: args.quiet,
        platform: args.platform,
        image,
    };
    let store = global.store()?;
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let opts = PullOptions {
        platform,
        ..Default::default()
    };
    let reference = Reference::parse(&args.image)?;
    let before = store.lookup(&args.image).ok().flatten().map(|i| i.id);
    let rt = crate::global::tokio_runtime()?;
    let image = if args.quiet {
        rt.block_on(store.pull(&args.image, &opts, &rstack_images::NoProgress))?
    } else {
        if reference.tag() == Some("latest")
            && !args.image.contains(":latest")
            && reference.digest().is_none()
        {
            println!("Using default tag: latest");
        }
        let what = reference.tag().or(reference.digest()).unwrap_or("latest");
        println!("{what}: Pulling from {}", reference.repository());
        let progress: Box<dyn PullProgress> = if std::io::stdout().is_terminal() {
            Box::new(Bars::default())
        } else {
            Box::new(Lines::default())
        };
        let image = rt.block_on(store.pull(&args.image, &opts, progress.as_ref()));
        drop(progress);
        let image = image?;
        let digest = image
            .record
            .repo_digests
            .iter()
            .filter_map(|d| Reference::parse(d).ok())
            .find(|d| d.name() == reference.name())
            .and_then(|d| d.digest().map(str::to_owned))
            .unwrap_or_default();
        println!("Digest: {digest}");
        if before.as_deref() == Some(image.id.as_str()) {
            println!("Status: Image is up to date for {}", reference.familiar());
        } else {
            println!(
                "Status: Downloaded newer image for {}",
                reference.familiar()
            );
        }
        image
    };
    let name = image
        .reference
        .as_ref()
        .map(|r| r.to_string())
        .context("pulled image has no name")?;
    println!("{name}");
    Ok(0)
}

/// Progress bars, one per layer, like docker on a terminal.
#[derive(Default)]
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg:<12} [{bar:40}] {bytes}/{total_bytes}")
        .expect("valid template")
        .progress_chars("=> ")
}

fn text_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").expect("valid template")
}

impl PullProgress for Bars {
    fn resolved(&self, _r: &Reference, _digest: &str, layers: &[(String, u64)]) {
        self.multi.set_draw_target(ProgressDrawTarget::stdout());
        let mut bars = self.bars.lock().expect("progress lock");
        for (id, size) in layers {
            let bar = self.multi.add(ProgressBar::new(*size));
            bar.set_style(text_style());
            bar.set_prefix(id.clone());
            bar.set_message("Pulling fs layer");
            bars.insert(id.clone(), bar);
        }
    }

    fn layer(&self, id: &str, event: LayerEvent) {
        let bars = self.bars.lock().expect("progress lock");
        let Some(bar) = bars.get(id) else { return };
        match event {
            LayerEvent::AlreadyExists => {
                bar.set_style(text_style());
                bar.finish_with_message("Already exists");
            }
            LayerEvent::Waiting => bar.set_message("Waiting"),
            LayerEvent::Resuming { from, total } => {
                bar.set_style(bar_style());
                bar.set_message(format!(
                    "Downloading (resumed at {})",
                    indicatif::HumanBytes(from)
                ));
                bar.set_length(total);
                bar.set_position(from);
            }
            LayerEvent::Downloading { done, total } => {
                if !bar.message().starts_with("Downloading") {
                    bar.set_style(bar_style());
                    bar.set_message("Downloading");
                }
                bar.set_length(total);
                bar.set_position(done);
            }
            LayerEvent::Extracting { done, total } => {
                if bar.message() != "Extracting" {
                    bar.set_style(bar_style());
                    bar.set_message("Extracting");
                }
                bar.set_length(total);
                bar.set_position(done);
            }
            LayerEvent::Complete => {
                bar.set_style(text_style());
                bar.finish_with_message("Pull complete");
            }
        }
    }
}

/// One line per layer state change, for logs and pipes.
#[derive(Default)]
struct Lines {
    last: Mutex<HashMap<String, String>>,
}

impl Lines {
    fn say(&self, id: &str, state: &str) {
        let mut last = self.last.lock().expect("progress lock");
        if last.get(id).map(String::as_str) != Some(state) {
            last.insert(id.to_owned(), state.to_owned());
            println!("{id}: {state}");
        }
    }
}

impl PullProgress for Lines {
    fn resolved(&self, _r: &Reference, _digest: &str, layers: &[(String, u64)]) {
        for (id, _) in layers {
            self.say(id, "Pulling fs layer");
        }
    }

    fn layer(&self, id: &str, event: LayerEvent) {
        let resumed;
        let state = match event {
            LayerEvent::Resuming { from, total } => {
                resumed = format!("Resuming download at {from} of {total} bytes");
                &resumed
            }
            LayerEvent::AlreadyExists => "Already exists",
            LayerEvent::Waiting => "Waiting",
            LayerEvent::Downloading { .. } => "Downloading",
            LayerEvent::Extracting { .. } => "Extracting",
            LayerEvent::Complete => "Pull complete",
        };
        self.say(id, state);
    }
}
