//! What creating a container needs on both sides of the creator's socket:
//! the paths of the leaf crates ([`Env`]), the container's plan (validated
//! before anything is created) and the image's `VOLUME`s as anonymous
//! volumes. A leaf of the crate's modules: [`crate::lifecycle`] (the
//! supervisor's side) and [`crate::creator`] (the forked process that
//! clones the container) both build on it, neither on the other's inside.

use std::path::{Path, PathBuf};

use rstack_compose::Project;
use rstack_images::LocalImage;
use rstack_netns::Networks;

use crate::mapping::{self, ContainerPlan};
use crate::state::{Layout, ProjectPaths};

/// A container's plan or volumes could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Mapping(#[from] mapping::Error),
    #[error(transparent)]
    Volume(#[from] crate::volumes::Error),
}

/// What the supervisor needs to reach the leaf crates.
#[derive(Debug, Clone)]
pub struct Env {
    pub layout: Layout,
    pub runtime: rstack_runtime::Paths,
    pub networks: Networks,
}

impl Env {
    pub fn new(run_root: &Path, root: &Path) -> Env {
        Env {
            layout: Layout::new(run_root, root),
            runtime: rstack_runtime::Paths::new(run_root, root),
            networks: Networks::new(rstack_netns::Config::new(run_root)),
        }
    }

    /// Where a container's pinned netns lives.
    pub(crate) fn netns_path(&self, name: &str) -> PathBuf {
        self.networks.paths().netns_dir().join(name)
    }
}

/// The plan of a container (validated before anything is created).
pub fn plan(
    env: &Env,
    pp: &ProjectPaths,
    project: &Project,
    service: &str,
    name: &str,
    number: u32,
) -> Result<ContainerPlan, Error> {
    let mut plan = mapping::plan_container(
        project,
        service,
        name,
        number,
        &env.layout.root.join("volumes"),
        &pp.anon_dir(name),
    )?;
    plan.options.rw_dir = Some(pp.rw_dir(name));
    Ok(plan)
}

/// Mounts the image's `VOLUME`s as anonymous volumes (see
/// [`mapping::image_volumes`]), filling each from the image when `fill`
/// (the creator process mounts what its caller already filled). Kept across
/// restarts, gone with the container, as Docker's.
pub(crate) fn add_image_volumes(
    options: &mut rstack_runtime::options::RunOptions,
    image: &LocalImage,
    anon: &Path,
    fill: bool,
) -> Result<(), Error> {
    let declared = image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.volumes().clone())
        .unwrap_or_default();
    for (source, target) in mapping::image_volumes(&declared, &options.mounts, anon) {
        if fill {
            crate::volumes::prepare(&source, &image.layer_dirs, &target)?;
        }
        options
            .mounts
            .push(rstack_runtime::options::MountSpec::Bind {
                source,
                target,
                read_only: false,
            });
    }
    Ok(())
}
