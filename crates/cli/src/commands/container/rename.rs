//! `container rename CONTAINER NEW_NAME` of a single (`run -d`)
//! container, running or not: its supervisor lets go (the container keeps
//! running), every piece of state keyed by the name moves under the
//! project lock — the record, the logs, the writable layer, the runtime's
//! name reservation, the network endpoints (DNS answers to the new name
//! at once), the Compose document — and a new supervisor adopts it. A
//! Compose service's container takes its name from the Compose file, so
//! it is not renamed here.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use rstack_stack::control::Request;
use rstack_stack::state::{ContainerRecord, Layout, ProjectLock, ProjectPaths};
use serde_json::Value;

use super::detached::SingleProject;
use super::single;
use crate::commands::inspect::find_container;
use crate::commands::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub container: String,
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

pub fn run(global: &GlobalOpts, a: Args) -> anyhow::Result<u8> {
    let layout = Layout::new(&global.run_root, &global.root);
    let Some((project, rec)) = find_container(&layout, &a.container)? else {
        bail!("No such container: {}", a.container);
    };
    let Some(sp) = SingleProject::of(&layout, &project) else {
        bail!(
            "cannot rename {}: the container of a Compose service takes its name from the Compose file (project {project})",
            rec.name
        );
    };
    let new = a.new_name.strip_prefix('/').unwrap_or(&a.new_name);
    if new == rec.name {
        bail!("Renaming a container with the same name as its current name");
    }
    single::check_container_name(new)?;
    if let Some(by) = super::detached::name_taken(global, &layout, new)? {
        return Err(super::detached::conflict(new, &by));
    }
    // the supervisor lets go; its containers keep running
    if let Some(sup) = rstack_stack::supervisor::running_supervisor(&sp.pp) {
        stack_common::ask(&sp.pp, &Request::Detach, Duration::from_secs(30))?;
        rstack_stack::status::wait_supervisor_exit(&sup, Duration::from_secs(30));
    }
    let lock = ProjectLock::acquire(&sp.pp)?;
    move_state(global, &sp, &rec, new)?;
    drop(lock);
    if rstack_stack::status::is_alive(&rec) {
        sp.ensure_supervisor(global)?;
    }
    Ok(0)
}

/// Moves everything keyed by `rec.name` to `new`.
fn move_state(
    global: &GlobalOpts,
    sp: &SingleProject,
    rec: &ContainerRecord,
    new: &str,
) -> anyhow::Result<()> {
    let old = rec.name.as_str();
    let pp = &sp.pp;
    let names = global.run_root.join("names");
    if names.join(old).symlink_metadata().is_ok() {
        rename(&names.join(old), &names.join(new))?;
    }
    crate::commands::network::networks(global)?
        .rename_endpoint(old, new)
        .with_context(|| format!("rename the network endpoints of {old}"))?;
    move_logs(pp, old, new)?;
    for (from, to) in [
        (pp.rw_dir(old), pp.rw_dir(new)),
        (pp.anon_dir(old), pp.anon_dir(new)),
    ] {
        if from.exists() {
            rename(&from, &to)?;
        }
    }
    rename_in_document(&sp.document(), old, new)?;
    let mut moved = rec.clone();
    moved.name = new.to_owned();
    moved.service = new.to_owned();
    pp.save_container(&moved)?;
    pp.remove_container(old)?;
    Ok(())
}

fn rename(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::rename(from, to)
        .with_context(|| format!("rename {} to {}", from.display(), to.display()))
}

/// The log dir and its `<name>-json.log[.N]` files.
fn move_logs(pp: &ProjectPaths, old: &str, new: &str) -> anyhow::Result<()> {
    let (from, to) = (pp.log_dir(old), pp.log_dir(new));
    if !from.exists() {
        return Ok(());
    }
    rename(&from, &to)?;
    let prefix = format!("{old}-json.log");
    for e in std::fs::read_dir(&to).with_context(|| format!("read {}", to.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(suffix) = name.strip_prefix(&prefix) {
            rename(&e.path(), &to.join(format!("{new}-json.log{suffix}")))?;
        }
    }
    Ok(())
}

/// The Compose document's service (and `container_name`) renamed.
fn rename_in_document(path: &Path, old: &str, new: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut doc: Value =
        serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
    let renamed = document_renamed(&mut doc, old, new);
    if !renamed {
        bail!("{}: no service {old}", path.display());
    }
    rstack_stack::state::write_json(path, &doc)?;
    Ok(())
}

/// Renames service `old` of `doc` to `new` (pure); false when absent.
fn document_renamed(doc: &mut Value, old: &str, new: &str) -> bool {
    let Some(services) = doc.get_mut("services").and_then(Value::as_object_mut) else {
        return false;
    };
    let Some(mut svc) = services.remove(old) else {
        return false;
    };
    svc["container_name"] = Value::String(new.to_owned());
    services.insert(new.to_owned(), svc);
    true
}

#[cfg(test)]
mod tests {
    use super::document_renamed;
    use serde_json::json;

    #[test]
    fn the_service_and_its_container_name_move() {
        let mut d = json!({"services": {"web": {"image": "x", "container_name": "web"}}});
        assert!(document_renamed(&mut d, "web", "site"));
        assert_eq!(
            d,
            json!({"services": {"site": {"image": "x", "container_name": "site"}}})
        );
        assert!(!document_renamed(&mut d, "nope", "x"));
    }
}
