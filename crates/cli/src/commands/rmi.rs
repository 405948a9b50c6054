//! `rstack rmi` (and `rstack image rm`): untag and remove images like
//! `docker rmi`; layers and blobs no other image uses are deleted too.
//! An image a container of some project still uses is refused with
//! Docker's conflict message (`-f` overrides it for stopped containers).

use rstack_images::{LocalImage, Store};
use rstack_stack::state::Layout;

use super::system;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Force removal of the image (several tags, or used by stopped containers)
    #[arg(short, long)]
    pub force: bool,
    /// Images (name, name:tag, name@digest, or image id)
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let store = global.store()?;
    let layout = Layout::new(&global.run_root, &global.root);
    let mut status = 0;
    for image in &args.images {
        if let Some(conflict) = in_use(&store, &layout, image, args.force)? {
            eprintln!("Error response from daemon: {conflict}");
            status = 1;
            continue;
        }
        match store.remove(image, args.force) {
            Ok(removed) => {
                for name in &removed.untagged {
                    println!("Untagged: {name}");
                }
                for id in removed.deleted_images.iter().chain(&removed.deleted_layers) {
                    println!("Deleted: {id}");
                }
            }
            Err(err) => {
                eprintln!("Error: {err}");
                status = 1;
            }
        }
    }
    Ok(status)
}

/// Docker's conflict message when removing `reference` would delete an
/// image that a container record still names; `None` when it may go
/// (unknown images are left to [`Store::remove`]'s own error). Untagging
/// one of several tags never conflicts.
pub(crate) fn in_use(
    store: &Store,
    layout: &Layout,
    reference: &str,
    force: bool,
) -> anyhow::Result<Option<String>> {
    let Some(img) = store.lookup(reference)? else {
        return Ok(None);
    };
    if only_untags(&img, reference) {
        return Ok(None);
    }
    let short = short_id(&img.id);
    for c in system::containers(layout)? {
        if c.rec.image_id != img.id {
            continue;
        }
        if c.active {
            return Ok(Some(format!(
                "conflict: unable to delete {short} (cannot be forced) - image is being used by running container {}",
                c.rec.name
            )));
        }
        if !force {
            return Ok(Some(format!(
                "conflict: unable to delete {short} (must be forced) - image is being used by stopped container {}",
                c.rec.name
            )));
        }
    }
    Ok(None)
}

/// Whether removing `reference` only takes one tag off an image that
/// keeps others.
fn only_untags(img: &LocalImage, reference: &str) -> bool {
    let by_id = img
        .id
        .trim_start_matches("sha256:")
        .starts_with(reference.trim_start_matches("sha256:"));
    !by_id && img.record.repo_tags.len() > 1
}

fn short_id(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}
