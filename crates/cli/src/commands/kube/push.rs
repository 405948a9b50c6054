//! `kube generate --push REG`: build the `build:` services with the
//! existing builder, tag each image `REG/<image>` and push it; the
//! manifests then name the pushed image by tag and digest
//! (`REG/image@sha256:...`), so the cluster runs exactly what was built.

use indexmap::IndexMap;
use rstack_compose::Project;
use rstack_images::{PushEvent, PushProgress, Store};

use crate::global::GlobalOpts;

/// Push progress on stderr (stdout may carry the manifests).
struct Lines;

impl PushProgress for Lines {
    fn blob(&self, id: &str, event: PushEvent) {
        match event {
            PushEvent::AlreadyExists => eprintln!("{id}: Layer already exists"),
            PushEvent::Pushing { .. } => eprintln!("{id}: Pushing"),
            PushEvent::Pushed => eprintln!("{id}: Pushed"),
        }
    }
}

/// Builds and pushes every `build:` service of `project`; the pushed
/// references (`REG/image@sha256:...`) by service.
pub fn build_and_push(
    global: &GlobalOpts,
    project: &Project,
    registry: &str,
) -> anyhow::Result<IndexMap<String, String>> {
    let builds = rstack_stack::build::service_builds(project, &[])?;
    let mut out = IndexMap::new();
    if builds.is_empty() {
        return Ok(out);
    }
    let services: Vec<String> = builds.iter().map(|b| b.service.clone()).collect();
    crate::commands::build::build_named(global, project, &services)?;
    let store = Store::open(&global.root)?;
    let rt = crate::global::tokio_runtime()?;
    let registry = registry.trim_end_matches('/');
    for b in builds {
        let target = format!("{registry}/{}", b.image);
        rstack_images::Reference::parse(&target).map_err(|e| {
            anyhow::anyhow!("--push {registry}: {target} is not an image reference: {e}")
        })?;
        store.tag(&b.image, &target)?;
        eprintln!("[+] Pushing {target}");
        let pushed = rt.block_on(store.push(&target, &Lines))?;
        out.insert(b.service, format!("{target}@{}", pushed.digest));
    }
    Ok(out)
}
