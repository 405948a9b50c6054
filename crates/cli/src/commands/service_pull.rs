//! Pulling the images of a project's services, for `up` and `compose
//! pull`: every distinct image at once (docker compose pulls in parallel
//! too; the store locks per layer, so images sharing layers fetch them
//! once), shown on a terminal as one progress bar per image (bytes of all
//! its layers), otherwise as one `Pulling` and one `Pulled` line each.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rstack_images::{LayerEvent, LocalImage, PullOptions, PullProgress, Reference, Store};

/// One image to pull and what to call it in the output (docker compose
/// names the service).
pub struct Wanted {
    pub label: String,
    pub image: String,
}

/// A bar for one image: the sum of its layers' downloaded bytes.
struct ImageBar {
    bar: ProgressBar,
    /// Layer id → (done, total).
    layers: Mutex<HashMap<String, (u64, u64)>>,
}

impl ImageBar {
    fn update(&self, id: &str, f: impl FnOnce(&mut (u64, u64))) {
        let mut layers = self.layers.lock().expect("progress lock");
        if let Some(l) = layers.get_mut(id) {
            f(l);
        }
        let (done, total) = layers
            .values()
            .fold((0, 0), |(d, t), (ld, lt)| (d + ld, t + lt));
        self.bar.set_length(total);
        self.bar.set_position(done);
    }
}

impl PullProgress for ImageBar {
    fn resolved(&self, _r: &Reference, _digest: &str, layers: &[(String, u64)]) {
        let mut map = self.layers.lock().expect("progress lock");
        for (id, size) in layers {
            map.insert(id.clone(), (0, *size));
        }
        self.bar.set_length(layers.iter().map(|l| l.1).sum());
        self.bar.set_message("Pulling");
    }

    fn layer(&self, id: &str, event: LayerEvent) {
        match event {
            LayerEvent::Downloading { done, total }
            | LayerEvent::Resuming { from: done, total } => self.update(id, |l| *l = (done, total)),
            LayerEvent::AlreadyExists | LayerEvent::Complete | LayerEvent::Extracting { .. } => {
                self.update(id, |l| l.0 = l.1)
            }
            LayerEvent::Waiting => {}
        }
    }
}

/// Pulls every image of `wanted` concurrently; one result per entry, in
/// order. `quiet`: no output at all.
pub fn pull_all(
    store: &Store,
    wanted: &[Wanted],
    quiet: bool,
) -> anyhow::Result<Vec<anyhow::Result<LocalImage>>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let rt = crate::global::tokio_runtime()?;
    let bars = !quiet && std::io::stderr().is_terminal();
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(" {prefix} {msg:<8} [{bar:30}] {bytes}/{total_bytes}")
        .expect("valid template")
        .progress_chars("=> ");
    let progress: Vec<ImageBar> = wanted
        .iter()
        .map(|w| {
            let bar = if bars {
                multi.add(ProgressBar::new(0))
            } else {
                ProgressBar::hidden()
            };
            bar.set_style(style.clone());
            bar.set_prefix(w.label.clone());
            bar.set_message("Waiting");
            ImageBar {
                bar,
                layers: Mutex::new(HashMap::new()),
            }
        })
        .collect();
    let opts = PullOptions::default();
    let pulls = wanted.iter().zip(&progress).map(|(w, p)| {
        let opts = &opts;
        async move {
            if !quiet && !bars {
                eprintln!(" {} Pulling", w.label);
            }
            let res = store
                .pull(&w.image, opts, p)
                .await
                .with_context(|| format!("service {}: pull {}", w.label, w.image));
            if bars {
                p.bar
                    .finish_with_message(if res.is_ok() { "Pulled" } else { "Error" });
            } else if !quiet && res.is_ok() {
                eprintln!(" {} Pulled", w.label);
            }
            res
        }
    });
    Ok(rt.block_on(futures_util::future::join_all(pulls)))
}
