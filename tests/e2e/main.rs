//! End-to-end tests: the real `rstack` binary against a real local registry.
//!
//! One binary (one link) for the whole suite; each area is a module that
//! returns its trials. A trial whose prerequisite is missing is reported as
//! ignored (skipped) with the reason, never as passed.

mod build;
mod compose;
mod connect;
mod cp;
mod docker;
mod firewall;
mod harness;
mod images;
mod inspect;
mod kube;
mod network;
mod personality;
mod probe;
mod registries;
mod runtime;
mod sandbox;
mod security;
mod single;
mod stack;
mod storage;
mod system;
mod tutorial;
mod tutorial_docker;

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let mut trials: Vec<libtest_mimic::Trial> = Vec::new();
    trials.extend(build::tests());
    trials.extend(compose::tests());
    trials.extend(connect::tests());
    trials.extend(cp::tests());
    trials.extend(docker::tests());
    trials.extend(firewall::tests());
    trials.extend(harness::tests());
    trials.extend(images::tests());
    trials.extend(inspect::tests());
    trials.extend(kube::tests());
    trials.extend(network::tests());
    trials.extend(personality::tests());
    trials.extend(probe::tests());
    trials.extend(registries::tests());
    trials.extend(runtime::tests());
    trials.extend(security::tests());
    trials.extend(single::tests());
    trials.extend(stack::tests());
    trials.extend(storage::tests());
    trials.extend(system::tests());
    trials.extend(tutorial::tests());
    trials.extend(tutorial_docker::tests());
    let conclusion = libtest_mimic::run(&args, trials);
    rstack_testkit::report();
    // Statics are never dropped: stop the shared registry explicitly.
    rstack_e2e::cleanup();
    conclusion.exit();
}
