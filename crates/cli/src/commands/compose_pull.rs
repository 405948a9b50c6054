//! `rstack compose pull [SERVICE...]` (and `rstack pull` with no image):
//! pulls the images of the project's services, like `docker compose pull`.
//! A service with only a `build:` section (or `pull_policy: build`) has
//! nothing to pull and is skipped; one that has both is pulled, and a
//! failure there is only a warning (it can still be built).

use rstack_compose::Project;

use super::service_pull::{self, Wanted};
use super::stack_common;
use crate::global::GlobalOpts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Policy {
    Missing,
    Always,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pull without printing progress information
    #[arg(short, long)]
    pub quiet: bool,
    /// Pull what it can and ignores images with pull failures
    #[arg(long = "ignore-pull-failures")]
    pub ignore_pull_failures: bool,
    /// Ignore images that can be built
    #[arg(long = "ignore-buildable")]
    pub ignore_buildable: bool,
    /// Also pull services declared as dependencies
    #[arg(long = "include-deps")]
    pub include_deps: bool,
    /// Apply pull policy ("missing"|"always")
    #[arg(long, value_enum, default_value = "always")]
    pub policy: Policy,
    /// Services to pull (default: all)
    pub services: Vec<String>,
}

/// What to do for one service.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Pull this image (a failure is only a warning when `buildable`).
    Pull { image: String, buildable: bool },
    /// Nothing to pull: the image is built.
    Skip,
}

fn plan(project: &Project, service: &str, ignore_buildable: bool) -> Plan {
    let svc = &project.services[service];
    let buildable = svc.build.is_some();
    if svc.pull_policy.as_deref() == Some("build")
        || (buildable && (svc.image.is_none() || ignore_buildable))
    {
        return Plan::Skip;
    }
    Plan::Pull {
        image: project.image_name(service),
        buildable,
    }
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let ctx = stack_common::load(global, &args.services)?;
    let project = &ctx.project;
    for s in &args.services {
        if !project.services.contains_key(s) {
            anyhow::bail!("no such service: {s}");
        }
    }
    let selected: Vec<String> = if args.services.is_empty() {
        project.services.keys().cloned().collect()
    } else if args.include_deps {
        project.plan()?.with_dependencies(&args.services)
    } else {
        args.services.clone()
    };
    let store = global.store()?;
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut buildable = Vec::new();
    for name in &selected {
        let Plan::Pull {
            image,
            buildable: b,
        } = plan(project, name, args.ignore_buildable)
        else {
            continue;
        };
        if wanted.iter().any(|w| w.image == image)
            || (args.policy == Policy::Missing && store.lookup(&image)?.is_some())
        {
            continue;
        }
        buildable.push(b);
        wanted.push(Wanted {
            label: name.clone(),
            image,
        });
    }
    let results = service_pull::pull_all(&store, &wanted, args.quiet)?;
    let mut failed = Vec::new();
    for ((w, res), b) in wanted.iter().zip(results).zip(buildable) {
        match res {
            Ok(_) => {}
            // it can still be built; docker compose warns too
            Err(e) if b || args.ignore_pull_failures => {
                eprintln!("WARN[0000] {e:#}");
                if !b {
                    failed.push(w.label.clone());
                }
            }
            Err(e) => return Err(e),
        }
    }
    if !failed.is_empty() && !args.quiet {
        eprintln!(" {} failed to pull (ignored)", failed.join(", "));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::{Plan, plan};

    fn project(yaml: &str) -> rstack_compose::Project {
        let mut o = rstack_compose::Options::new(std::env::temp_dir(), Default::default());
        o.files = vec!["-".into()];
        o.stdin = Some(yaml.to_owned());
        o.project_name = Some("p".into());
        rstack_compose::load(&o).unwrap()
    }

    #[test]
    fn build_only_services_have_nothing_to_pull() {
        let p = project(
            "services:\n  \
             web: {image: nginx}\n  \
             app: {build: .}\n  \
             both: {image: me/both, build: .}\n  \
             never: {image: me/x, build: ., pull_policy: build}\n",
        );
        assert_eq!(
            plan(&p, "web", false),
            Plan::Pull {
                image: "nginx".into(),
                buildable: false
            }
        );
        assert_eq!(plan(&p, "app", false), Plan::Skip);
        assert_eq!(
            plan(&p, "both", false),
            Plan::Pull {
                image: "me/both".into(),
                buildable: true
            }
        );
        assert_eq!(plan(&p, "both", true), Plan::Skip);
        assert_eq!(plan(&p, "never", false), Plan::Skip);
    }
}
