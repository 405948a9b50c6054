//! `rstack kube generate [SERVICE...]`: the project, as the loader gives
//! `up` (profiles, overrides, interpolation, `env_file`s applied), as
//! Kubernetes manifests on stdout or one file per object in `-o DIR`. What
//! could not be carried over is reported on stderr, key by key. Needs no
//! root: it reads the Compose files, the files they name and, when it is
//! there, the image store (`--push` builds, which does need root).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use indexmap::IndexMap;
use rstack_kube::{Kind, Options, RealFiles, ServiceType};

use crate::global::GlobalOpts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TypeArg {
    #[value(name = "LoadBalancer")]
    LoadBalancer,
    #[value(name = "NodePort")]
    NodePort,
    #[value(name = "ClusterIP")]
    ClusterIp,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write one file per object into this directory (default: one stream on stdout)
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Namespace of the objects (default: the project name)
    #[arg(long, value_name = "NAME")]
    namespace: Option<String>,
    /// Also write a kustomization.yaml listing the files (with -o)
    #[arg(long)]
    kustomize: bool,
    /// Registry the cluster pulls the images of build: services from (REG/<image>)
    #[arg(long = "image-registry", value_name = "REG")]
    image_registry: Option<String>,
    /// Build the build: services, push them to REG and use the pushed images
    #[arg(long, value_name = "REG")]
    push: Option<String>,
    /// Service type for published ports
    #[arg(long = "service-type", value_enum, default_value = "LoadBalancer")]
    service_type: TypeArg,
    /// Turn directory binds into hostPath volumes (the node's directory)
    #[arg(long = "allow-hostpath")]
    allow_hostpath: bool,
    /// Size of a PersistentVolumeClaim when x-kubernetes does not give one
    #[arg(long = "pvc-size", value_name = "SIZE", default_value = "1Gi")]
    pvc_size: String,
    /// Image of the init containers that wait for a dependency (needs sh and nc -z)
    #[arg(long = "wait-image", value_name = "IMAGE")]
    wait_image: Option<String>,
    /// Image with kubectl, for init containers that wait for a Job
    #[arg(long = "kubectl-image", value_name = "IMAGE")]
    kubectl_image: Option<String>,
    /// The cluster's DNS domain
    #[arg(
        long = "cluster-domain",
        value_name = "DOMAIN",
        default_value = "cluster.local"
    )]
    cluster_domain: String,
    /// Services to generate (and their dependencies; default: all)
    services: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    if args.kustomize && args.output.is_none() {
        bail!("--kustomize writes files: give -o DIR");
    }
    let mut opts = crate::commands::config::compose_options(global)?;
    opts.services = args.services.clone();
    opts.acting_on = args.services.clone();
    let mut project = rstack_compose::load(&opts)?;
    for w in &project.warnings {
        eprintln!("WARN[0000] {w}");
    }
    let pushed = match &args.push {
        Some(reg) => super::push::build_and_push(global, &project, reg)?,
        None => IndexMap::new(),
    };
    let facts = super::facts::image_facts(&global.root, &mut project, &pushed);
    let options = kube_options(&args, pushed);
    let out = rstack_kube::generate(&project, &options, &facts, &RealFiles)?;
    match &args.output {
        Some(dir) => write_dir(dir, &out.objects, args.kustomize)?,
        None => {
            let text = rstack_kube::render::stream(&out.objects)?;
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    print_report(&out.report);
    Ok(0)
}

fn kube_options(args: &Args, pushed: IndexMap<String, String>) -> Options {
    let mut o = Options {
        namespace: args.namespace.clone(),
        service_type: match args.service_type {
            TypeArg::LoadBalancer => ServiceType::LoadBalancer,
            TypeArg::NodePort => ServiceType::NodePort,
            TypeArg::ClusterIp => ServiceType::ClusterIP,
        },
        image_registry: args.image_registry.clone().or_else(|| args.push.clone()),
        pushed,
        allow_hostpath: args.allow_hostpath,
        pvc_size: args.pvc_size.clone(),
        cluster_domain: args.cluster_domain.clone(),
        ..Options::default()
    };
    if let Some(i) = &args.wait_image {
        o.wait_image = i.clone();
    }
    if let Some(i) = &args.kubectl_image {
        o.kubectl_image = i.clone();
    }
    o
}

/// One file per object (Secrets readable by the owner only), all rendered
/// before the first is written.
fn write_dir(dir: &Path, objects: &[rstack_kube::Object], kustomize: bool) -> anyhow::Result<()> {
    let files = rstack_kube::render::files(objects, kustomize)?;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for (name, text) in &files {
        let secret = objects
            .iter()
            .any(|o| o.kind == "Secret" && rstack_kube::render::file_name(o) == *name);
        let mode = if secret { 0o600 } else { 0o644 };
        let path = dir.join(name);
        rstack_sys::fs::write_atomic_mode(&path, text.as_bytes(), mode)
            .with_context(|| format!("write {}", path.display()))?;
    }
    eprintln!("Wrote {} files to {}", files.len(), dir.display());
    Ok(())
}

/// The report on stderr: what was dropped, changed, and worth knowing.
fn print_report(report: &[rstack_kube::Entry]) {
    let count = |k: Kind| report.iter().filter(|e| e.kind == k).count();
    let (dropped, changed, notes) = (
        count(Kind::Dropped),
        count(Kind::Changed),
        count(Kind::Note),
    );
    if report.is_empty() {
        return;
    }
    eprintln!(
        "{dropped} Compose key(s) not carried over, {changed} changed, {notes} note(s) (docs/kubernetes.md says why):"
    );
    for e in report {
        eprintln!("  {e}");
    }
}
