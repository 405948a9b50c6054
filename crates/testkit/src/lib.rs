//! How rstack's libtest-mimic harnesses (runtime and netns privileged
//! tests, the e2e suite) skip a trial, in one place.
//!
//! A trial whose prerequisite is missing is *ignored with the reason*
//! (`Trial::ignorable_test` + `Completion::ignored_with`), never a passing
//! no-op (a `Trial::test(.., || Ok(())).with_ignored_flag(true)` passes under
//! `--include-ignored`). In CI (`CI=true`) a skip is a **failure**, unless
//! its reason starts with an entry of [`CI_ALLOWED`]: a CI machine has to
//! have everything the suite needs (`tests/install-deps.sh`). Each skip
//! is also remembered, and [`report`] prints them all at the end.

use std::sync::Mutex;

use libtest_mimic::{Completion, Failed, Trial};

/// Reasons a trial may still be skipped in CI, by prefix, with why.
pub const CI_ALLOWED: &[(&str, &str)] = &[(
    "this host has cgroup v2",
    "the cgroup v1 variant of a check has nothing to run on a pure v2 host (the VM stage)",
)];

static SKIPPED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// What a trial returns when it cannot run: ignored with `reason`, or in
/// CI a failure unless allowed.
pub fn skip(name: &str, reason: impl Into<String>) -> Result<Completion, Failed> {
    let reason = reason.into();
    SKIPPED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((name.to_owned(), reason.clone()));
    if in_ci() && !CI_ALLOWED.iter().any(|(p, _)| reason.starts_with(p)) {
        return Err(format!(
            "skipped in CI ({reason}): CI must have every prerequisite \
             (tests/install-deps.sh); see rstack_testkit::CI_ALLOWED"
        )
        .into());
    }
    Ok(Completion::ignored_with(reason))
}

/// A trial that is skipped with `reason` (see [`skip`]).
pub fn skipped(name: impl Into<String>, reason: impl Into<String>) -> Trial {
    let name = name.into();
    let reason = reason.into();
    let label = name.clone();
    Trial::ignorable_test(name, move || skip(&label, reason))
}

/// Prints every skip of this run and the CI allow-list; call it after
/// `libtest_mimic::run`.
pub fn report() {
    let skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    if skipped.is_empty() {
        return;
    }
    eprintln!("\nskipped trials ({}):", skipped.len());
    for (name, reason) in skipped.iter() {
        eprintln!("  {name}: {reason}");
    }
    eprintln!("allowed to be skipped in CI (CI=true makes any other skip a failure):");
    for (prefix, why) in CI_ALLOWED {
        eprintln!("  \"{prefix}...\": {why}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_is_ignored_outside_ci_and_fails_in_ci_unless_allowed() {
        let outside = {
            // SAFETY: no other thread of this test binary reads the
            // environment while this runs (single test).
            unsafe { std::env::remove_var("CI") };
            skip("a", "needs root")
        };
        assert!(outside.is_ok());
        // SAFETY: as above.
        unsafe { std::env::set_var("CI", "true") };
        assert!(skip("b", "needs root").is_err());
        assert!(skip("c", "this host has cgroup v2 with cpu and memory").is_ok());
        // SAFETY: as above.
        unsafe { std::env::remove_var("CI") };
        assert_eq!(SKIPPED.lock().unwrap().len(), 3);
    }
}
