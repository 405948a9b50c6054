//! End-to-end tests: the real `rstack` binary against a real local registry.
//!
//! One binary (one link) for the whole suite; each area is a module that
//! returns its trials. A trial whose prerequisite is missing is reported as
//! ignored (skipped) with the reason, never as passed.

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let trials: Vec<libtest_mimic::Trial> = Vec::new();
    libtest_mimic::run(&args, trials).exit();
}
