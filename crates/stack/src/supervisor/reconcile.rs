//! Carrying out the reconcile plan ([`super::plan`]) when a supervisor
//! starts: live containers are verified (pid + start time through a
//! pidfd), adopted ones handed to runners, stale and surplus ones stopped
//! and removed, the rest registered for their service's starter. `up` after
//! a supervisor crash and a repeated `up` are this one path.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rstack_images::LocalImage;

use super::hub::Inner;
use super::plan::{self, Choice, Context, replica_numbers};
use super::{Error, UpOptions};
use crate::lifecycle;
use crate::process::Pidfd;
use crate::state::{ContainerRecord, Status};

/// Registers every container `up` deals with and returns the live ones
/// to adopt (with their pidfds).
pub(super) fn reconcile(
    inner: &Arc<Inner>,
    opts: &UpOptions,
    selected: &[String],
) -> Result<Vec<(String, Pidfd)>, Error> {
    let records = inner.pp.containers()?;
    let wanted = wanted(inner, selected, &records)?;
    if !opts.foreign.is_empty() {
        let names: Vec<&str> = records
            .iter()
            .filter(|r| !r.oneoff && opts.foreign.contains(&r.service))
            .map(|r| r.name.as_str())
            .collect();
        inner.warn(format!(
            "Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            names.join(" ")
        ));
    }
    let pidfds: Vec<Option<Pidfd>> = records.iter().map(verified).collect();
    let restart_too = plan::restarted_dependants(&inner.project, opts, selected, &records, &wanted);
    let cx = Context {
        project: &inner.project,
        opts,
        selected,
        restart_too: &restart_too,
    };
    let found: Vec<(&ContainerRecord, bool)> = records
        .iter()
        .zip(&pidfds)
        .map(|(r, p)| (r, p.is_some()))
        .collect();
    let plan = plan::plan(&found, &wanted, &cx);
    let mut adopt = Vec::new();
    let grace = Duration::from_secs(opts.timeout.unwrap_or(10));
    for ((old, live), choice) in records.into_iter().zip(pidfds).zip(plan.choices) {
        if let Some(p) = apply(inner, old, live, choice, &wanted, grace)? {
            adopt.push(p);
        }
    }
    let mut hub = inner.hub();
    for name in plan.create {
        let rec = wanted[&name].clone();
        hub.ctrs.insert(name, inner.new_live(rec));
    }
    for live in hub.ctrs.values_mut() {
        if selected.contains(&live.rec.service) && !adopt.iter().any(|(n, _)| n == &live.rec.name) {
            // Not running: it gets (re)created by its service's starter.
            live.rec.status = Status::Creating;
            live.rec.user_stopped = false;
        }
    }
    Ok(adopt)
}

/// The pidfd of a container recorded as running, if it still is.
fn verified(rec: &ContainerRecord) -> Option<Pidfd> {
    match (rec.pid, rec.start_time) {
        (Some(pid), Some(st)) if rec.status == Status::Running => Pidfd::open_verified(pid, st),
        _ => None,
    }
}

/// The containers the project wants, with the config hash, image and
/// command they would be created with; a name two services want goes to
/// the selected one, and a name a selected service cannot have is a
/// [`Error::NameConflict`].
fn wanted(
    inner: &Inner,
    selected: &[String],
    records: &[ContainerRecord],
) -> Result<BTreeMap<String, ContainerRecord>, Error> {
    let project = &inner.project;
    let pairs: Vec<(String, String)> = project
        .services
        .iter()
        .flat_map(|(s, svc)| {
            replica_numbers(svc).map(move |n| (project.container_name(s, n), s.clone()))
        })
        .collect();
    if let Some(c) = super::known::name_conflict(&pairs, records, selected) {
        return Err(Error::NameConflict(c));
    }
    let mut wanted: BTreeMap<String, ContainerRecord> = BTreeMap::new();
    for (svc_name, svc) in &project.services {
        let image = &inner.images[svc_name];
        let hash = crate::mapping::config_hash(svc, &image.id);
        for n in replica_numbers(svc) {
            let name = project.container_name(svc_name, n);
            let plan = lifecycle::plan(&inner.env, &inner.pp, project, svc_name, &name, n)?;
            let mut rec = ContainerRecord::new(&name, svc_name, n);
            rec.config_hash = hash.clone();
            rec.image = project.image_name(svc_name);
            rec.image_id = image.id.clone();
            rec.command = display_command(&plan.options, image);
            let taken = wanted
                .get(&name)
                .is_some_and(|w| selected.contains(&w.service) || !selected.contains(svc_name));
            if !taken {
                wanted.insert(name, rec);
            }
        }
    }
    Ok(wanted)
}

/// Carries out the choice for one found container; returns it when it
/// is to be adopted.
fn apply(
    inner: &Inner,
    mut old: ContainerRecord,
    live: Option<Pidfd>,
    choice: Choice,
    wanted: &BTreeMap<String, ContainerRecord>,
    grace: Duration,
) -> Result<Option<(String, Pidfd)>, Error> {
    let stop = |p: &Pidfd, old: &ContainerRecord| {
        p.stop(inner.stop_signal_of(&old.service), grace, || false);
    };
    match choice {
        Choice::Skip => {}
        Choice::Adopt => {
            let name = old.name.clone();
            let mut l = inner.new_live(old);
            // its runner is started by the caller: no starter may launch it
            l.active = true;
            inner.report(&name, "Running");
            inner.hub().ctrs.insert(name.clone(), l);
            return Ok(live.map(|p| (name, p)));
        }
        Choice::KeepStopped => {
            remove_leftover(inner, &mut old);
            let mut l = inner.new_live(old);
            l.rec.status = Status::Exited;
            inner.hub().ctrs.insert(l.rec.name.clone(), l);
        }
        Choice::Recreate { fresh, .. } => {
            if let Some(p) = &live {
                inner.report(&old.name, "Recreate");
                stop(p, &old);
            }
            remove_leftover(inner, &mut old);
            // A new container gets a fresh writable layer; an unchanged
            // one that had stopped (or is restarted along with a
            // dependency) is docker's same container started again.
            // Anonymous volumes stay either way, as with compose.
            let mut rec = wanted[&old.name].clone();
            if fresh {
                let _ = std::fs::remove_dir_all(inner.pp.rw_dir(&old.name));
            } else {
                rec.id = old.id.clone();
            }
            rec.restart_count = 0;
            inner.hub().ctrs.insert(rec.name.clone(), inner.new_live(rec));
        }
        Choice::Remove { .. } => {
            if let Some(p) = &live {
                stop(p, &old);
            }
            remove_leftover(inner, &mut old);
            inner.forget(&old.name)?;
            inner.report(&old.name, "Removed");
        }
        Choice::WarnOrphan => inner.warn(format!(
            "Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            old.name
        )),
    }
    Ok(None)
}

fn remove_leftover(inner: &Inner, rec: &mut ContainerRecord) {
    for e in lifecycle::remove_leftover(&inner.env, rec) {
        inner.warn(e);
    }
}

/// The command line `ps` shows: the entrypoint and command the container
/// runs (its own, else its image's).
fn display_command(o: &rstack_runtime::RunOptions, image: &LocalImage) -> Vec<String> {
    let cfg = image.config.config().as_ref();
    let mut v = o
        .entrypoint
        .clone()
        .or_else(|| cfg.and_then(|c| c.entrypoint().clone()))
        .unwrap_or_default();
    if o.command.is_empty() {
        v.extend(cfg.and_then(|c| c.cmd().clone()).unwrap_or_default());
    } else {
        v.extend(o.command.iter().cloned());
    }
    v
}
