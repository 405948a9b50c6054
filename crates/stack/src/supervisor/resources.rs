//! The project's resources before any container: its networks (each
//! recorded in the project's resources before it is created, so `down`
//! removes it; the host firewall's accepts re-applied for existing ones)
//! and its volume dirs; and each service's healthcheck completed with its
//! image's `HEALTHCHECK`.

use std::collections::{BTreeMap, HashMap};

use rstack_compose::Project;
use rstack_images::LocalImage;

use super::{Error, Event, Reporter};
use crate::error_chain::chain;
use crate::prepare::Env;
use crate::process::Pidfd;
use crate::state::{ContainerRecord, ProjectPaths, ProjectResources};
use sha2::Digest;

/// Creates the networks of `project`'s services (of `only` when not empty),
/// each recorded in the project's resources before it is created so `down`
/// removes it, and the volume dirs; for `up`'s supervisor and for a one-off
/// `run` on a project that was never up.
pub fn ensure_resources(
    env: &Env,
    pp: &ProjectPaths,
    project: &Project,
    only: &[String],
    reporter: &Reporter,
) -> Result<(), Error> {
    ensure_resources_with(env, pp, project, only, reporter, None)
}

/// Stops a live container of the project (its stop signal, then SIGKILL
/// after its grace period).
pub(super) type Stopper<'a> = &'a dyn Fn(&ContainerRecord, &Pidfd);

/// [`ensure_resources`]; with `stop` (the supervisor), a network of the
/// project whose config changed since it was created is recreated, as
/// docker compose does: its containers are stopped and detached first
/// (and recreated by the reconcile, their config hash cleared).
pub(super) fn ensure_resources_with(
    env: &Env,
    pp: &ProjectPaths,
    project: &Project,
    only: &[String],
    reporter: &Reporter,
    stop: Option<Stopper<'_>>,
) -> Result<(), Error> {
    // the volumes' driver options first: a bad one creates nothing
    let volume_opts = crate::volume_driver::declared(project)?;
    let mut res = pp.resources()?;
    res.config_files = project.compose_files.clone();
    res.working_dir = project.working_dir.clone();
    let used: std::collections::BTreeSet<&str> = project
        .services
        .iter()
        .filter(|(name, _)| only.is_empty() || only.contains(name))
        .flat_map(|(_, s)| s.networks.keys().map(String::as_str))
        .collect();
    // networks that exist already: their accepts in the host's firewall
    // are re-applied (a firewall reload or a dockerd started since then
    // may have dropped or preceded them); new ones get them on create
    let mut reused = false;
    for key in used {
        reused |= ensure_network(env, pp, project, key, &mut res, reporter, stop)?;
    }
    if reused && let Err(e) = env.networks.refresh_firewall() {
        (reporter)(Event::Warning(format!(
            "cannot re-apply rstack's rules to the host's firewall: {}",
            chain(&e)
        )));
    }
    for (key, decl) in &project.volumes {
        if decl.external == Some(true) {
            continue;
        }
        let name = project.volume_name(key);
        let dir = env.layout.volume_dir(&name).join("_data");
        if dir.exists() {
            continue;
        }
        if !res.volumes.contains(&name) {
            res.volumes.push(name.clone());
            pp.save_resources(&res)?;
        }
        if let Some(opts) = volume_opts.get(key) {
            crate::volume_driver::save(&env.layout.volume_dir(&name), opts)?;
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| crate::state::Error::from(crate::io_error::io("create", &dir)(e)))?;
        (reporter)(Event::Resource {
            kind: "Volume",
            name,
            action: "Created".into(),
        });
    }
    pp.save_resources(&res)?;
    Ok(())
}

/// Creates network `key` unless it exists (recorded in `res` first);
/// true when it existed already (or is external).
/// The label that keeps a network's config hash, as docker compose's.
const CONFIG_HASH: &str = "com.docker.compose.config-hash";

/// The hash of a network's declaration: a change recreates the network.
pub(crate) fn network_hash(decl: &rstack_compose::model::Network) -> String {
    let json = serde_json::to_vec(decl).unwrap_or_default();
    hex::encode(sha2::Sha256::digest(&json))
}

fn ensure_network(
    env: &Env,
    pp: &ProjectPaths,
    project: &Project,
    key: &str,
    res: &mut ProjectResources,
    reporter: &Reporter,
    stop: Option<Stopper<'_>>,
) -> Result<bool, Error> {
    let name = project.network_name(key);
    let decl = project.networks.get(key).cloned().unwrap_or_default();
    if decl.external == Some(true) {
        env.networks
            .inspect(&name)
            .map_err(|source| Error::ExternalNetwork {
                name: name.clone(),
                source,
            })?;
        return Ok(true);
    }
    let hash = network_hash(&decl);
    let event = |action: &str| Event::Resource {
        kind: "Network",
        name: name.clone(),
        action: action.into(),
    };
    if let Ok(existing) = env.networks.inspect(&name) {
        let ours = existing.labels.get("com.docker.compose.project") == Some(&project.name);
        let diverged = existing.labels.get(CONFIG_HASH).is_some_and(|h| *h != hash);
        let Some(stop) = stop.filter(|_| ours && diverged) else {
            return Ok(true);
        };
        (reporter)(event("Recreate"));
        detach_containers(env, pp, &name, stop, reporter)?;
        env.networks
            .remove(&name)
            .map_err(|source| Error::CreateNetwork {
                name: name.clone(),
                source,
            })?;
    }
    if !res.networks.contains(&name) {
        res.networks.push(name.clone());
        pp.save_resources(res)?;
    }
    let mut labels = BTreeMap::new();
    labels.insert("com.docker.compose.network".into(), key.to_owned());
    labels.insert("com.docker.compose.project".into(), project.name.clone());
    labels.insert(CONFIG_HASH.into(), hash);
    for (k, v) in &decl.labels {
        labels.insert(k.clone(), v.clone());
    }
    let pool = decl.ipam.as_ref().and_then(|i| i.config.first());
    let opts = rstack_netns::CreateOptions {
        name: name.clone(),
        subnet: pool.and_then(|p| p.subnet.clone()),
        gateway: pool.and_then(|p| p.gateway.clone()),
        internal: decl.internal.unwrap_or(false),
        options: decl.driver_opts.clone().into_iter().collect(),
        labels,
    };
    (reporter)(event("Creating"));
    env.networks
        .create(&opts)
        .map_err(|source| Error::CreateNetwork {
            name: name.clone(),
            source,
        })?;
    (reporter)(event("Created"));
    Ok(false)
}

/// Stops the project's containers on network `name` and takes them off
/// it; their records say exited with no config hash, so the reconcile
/// creates them again on the new network.
fn detach_containers(
    env: &Env,
    pp: &ProjectPaths,
    name: &str,
    stop: Stopper<'_>,
    reporter: &Reporter,
) -> Result<(), Error> {
    for mut rec in pp.containers()? {
        if rec.oneoff || !rec.networks.iter().any(|n| n == name) {
            continue;
        }
        if let (Some(pid), Some(st)) = (rec.pid, rec.start_time)
            && let Some(p) = Pidfd::open_verified(pid, st)
        {
            (reporter)(Event::Resource {
                kind: "Container",
                name: rec.name.clone(),
                action: "Stopping".into(),
            });
            stop(&rec, &p);
        }
        for e in crate::lifecycle::remove_leftover(env, &mut rec) {
            (reporter)(Event::Warning(e));
        }
        rec.status = crate::state::Status::Exited;
        rec.config_hash.clear();
        pp.save_container(&rec)?;
    }
    Ok(())
}

/// Completes each service's healthcheck with its image's `HEALTHCHECK`
/// (see [`crate::health::with_image`]), so everything downstream (checks,
/// `service_healthy`, the config hash) sees the one Docker would run.
pub(super) fn image_healthchecks(
    env: &Env,
    project: &mut Project,
    images: &HashMap<String, LocalImage>,
) -> Result<(), Error> {
    let store =
        rstack_images::Store::open(&env.layout.root).map_err(|e| Error::Store(Box::new(e)))?;
    for (name, svc) in project.services.iter_mut() {
        let Some(img) = images.get(name) else {
            continue;
        };
        let config = store
            .docker_config(img)
            .map_err(|source| Error::ImageConfig {
                service: name.clone(),
                image: img.id.clone(),
                source: Box::new(source),
            })?;
        svc.healthcheck =
            crate::health::with_image(svc.healthcheck.as_ref(), config.config.healthcheck.as_ref());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_hash_follows_its_declaration() {
        let mut n = rstack_compose::model::Network::default();
        let plain = network_hash(&n);
        assert_eq!(plain, network_hash(&n.clone()));
        n.labels.insert("foo".into(), "bar".into());
        assert_ne!(plain, network_hash(&n));
    }
}
