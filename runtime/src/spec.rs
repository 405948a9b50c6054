//! The OCI runtime spec (config.json) of one container, built from the
//! image's config plus the run options with Docker's semantics: the
//! ENTRYPOINT/CMD override rules, the environment merge, the user, Docker's
//! default mounts, masked /proc paths, capabilities, seccomp, device rules
//! and cgroup limits. Pure: it touches no files, so it is unit tested
//! without root; everything it needs from the host comes in [`SpecContext`].
//!
//! One module per section of the spec: `process` (command, environment,
//! user, capabilities, rlimits), `mounts`, `linux` (namespaces, cgroup
//! resources, devices, masked paths, seccomp); the inputs in `context`,
//! the error in `error`.

mod context;
mod error;
mod linux;
mod mounts;
mod process;
#[cfg(test)]
mod tests;

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::Spec;
use serde_json::{Value, json};

use crate::options::RunOptions;

pub use context::{CgroupView, HostDevice, SpecContext, host_devices};
pub use error::SpecError;
pub use linux::{MASKED_PATHS, READONLY_PATHS};
pub(crate) use process::env_key;
pub use process::{DEFAULT_PATH, command_line, environment, hostname};

/// Builds the whole spec, validating as it goes (the command first, then
/// the hostname, the environment, the process, the Linux section, the
/// mounts).
pub fn build_spec(
    image: &ImageConfiguration,
    opts: &RunOptions,
    ctx: &SpecContext,
) -> Result<Spec, SpecError> {
    let args = command_line(image, opts)?;
    let hostname = hostname(opts, &ctx.default_hostname)?;
    let process = process::process_section(image, opts, ctx, args, &hostname)?;
    let linux = linux::linux_section(opts, ctx)?;
    let spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": { "path": ctx.rootfs, "readonly": opts.read_only },
        "hostname": hostname,
        "mounts": mounts::mounts(opts, ctx)?,
        "linux": linux,
        "annotations": annotations(image, opts),
    });
    serde_json::from_value(spec).map_err(SpecError::Invalid)
}

/// The image's labels, overridden by `--label`.
fn annotations(image: &ImageConfiguration, opts: &RunOptions) -> Value {
    let mut annotations = serde_json::Map::new();
    let image_labels = image
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default();
    for (k, v) in image_labels {
        annotations.insert(k, json!(v));
    }
    for (k, v) in &opts.labels {
        annotations.insert(k.clone(), json!(v));
    }
    Value::Object(annotations)
}
