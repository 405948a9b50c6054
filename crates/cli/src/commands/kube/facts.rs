//! What the image store knows about the services' images, for
//! `runAsNonRoot`, the image's HEALTHCHECK and EXPOSE, read without root and
//! without changing anything: a store that does not exist or cannot be
//! read just means no facts (each such service is noted in the report).

use indexmap::IndexMap;
use rstack_compose::Project;
use rstack_images::Store;
use rstack_kube::{ImageFacts, RunAs};
use rstack_runtime::user::{read_from_layers, resolve_user};

/// The facts of each service whose image is in the store at `root`; each
/// service's healthcheck is completed with its image's `HEALTHCHECK`, as
/// `up` does.
pub fn image_facts(
    root: &std::path::Path,
    project: &mut Project,
    pushed: &IndexMap<String, String>,
) -> IndexMap<String, ImageFacts> {
    let mut out = IndexMap::new();
    // Store::open creates its directories: only open one that exists.
    match std::fs::metadata(root.join("images")) {
        Ok(m) if m.is_dir() => {}
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!(
                "WARN[0000] image store {} cannot be read by this user: image users, healthchecks and ports not read",
                root.display()
            );
            return out;
        }
        _ => return out,
    }
    let store = match Store::open(root) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "WARN[0000] image store {}: {e}: image users, healthchecks and ports not read",
                root.display()
            );
            return out;
        }
    };
    let names: Vec<(String, String)> = project
        .services
        .keys()
        .map(|n| {
            (
                n.clone(),
                pushed
                    .get(n)
                    .cloned()
                    .unwrap_or_else(|| project.image_name(n)),
            )
        })
        .collect();
    for (name, image) in names {
        let img = match store.lookup(&image) {
            Ok(Some(img)) => img,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("WARN[0000] image {image} of service {name}: {e}");
                continue;
            }
        };
        let config = match store.docker_config(&img) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("WARN[0000] image {image} of service {name}: {e}");
                continue;
            }
        };
        let Some(svc) = project.services.get_mut(&name) else {
            continue;
        };
        svc.healthcheck = rstack_stack::health::with_image(
            svc.healthcheck.as_ref(),
            config.config.healthcheck.as_ref(),
        );
        let user = config.config.user.clone().unwrap_or_default();
        let spec = svc.user.clone().unwrap_or_else(|| user.clone());
        let passwd = read_from_layers(&img.layer_dirs, "etc/passwd").unwrap_or_default();
        let group = read_from_layers(&img.layer_dirs, "etc/group").unwrap_or_default();
        let run_as = resolve_user(&spec, &[], &passwd, &group)
            .ok()
            .map(|r| RunAs {
                uid: r.uid,
                gid: Some(r.gid),
            });
        let exposed = config
            .config
            .exposed_ports
            .as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        out.insert(
            name,
            ImageFacts {
                user,
                run_as,
                exposed,
            },
        );
    }
    out
}
