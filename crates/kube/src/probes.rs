//! `healthcheck` → startup, readiness and liveness probes.
//!
//! Docker runs the test every `interval` (default 30s), gives it `timeout`
//! (30s) and calls the container unhealthy after `retries` (3) failures in
//! a row; during `start_period` failures do not count and the test runs
//! every `start_interval` (5s). Kubernetes splits that in three: the
//! readiness probe takes the pod out of its Services while it fails (what
//! `service_healthy` waits for), the liveness probe restarts the container
//! after `failureThreshold` failures (what swarm does to an unhealthy
//! task), and the startup probe holds both off while the service starts:
//! it runs every `start_interval` and allows the start period's worth of
//! failures plus `retries`. The probe is an `exec` of the test (`CMD-SHELL`
//! through `/bin/sh -c`, as Docker's default shell runs it). Kubernetes
//! counts whole seconds: shorter times are rounded up, and reported.

use rstack_compose::model::Healthcheck;
use serde_json::{Value, json};

use crate::names::seconds;
use crate::report::Keys;

const DEFAULT_INTERVAL: i64 = 30_000_000_000;
const DEFAULT_TIMEOUT: i64 = 30_000_000_000;
const DEFAULT_START_INTERVAL: i64 = 5_000_000_000;
const DEFAULT_RETRIES: u64 = 3;

/// The probes of one container (all `None` without a usable healthcheck).
#[derive(Debug, Default, PartialEq)]
pub struct Probes {
    pub startup: Option<Value>,
    pub readiness: Option<Value>,
    pub liveness: Option<Value>,
}

/// The probes for `hc`, marking its keys in `keys`.
pub fn probes(hc: Option<&Healthcheck>, keys: &mut Keys) -> Probes {
    let Some(hc) = hc else {
        return Probes::default();
    };
    if hc.disable == Some(true) {
        // nothing to carry: no probes is what `disable` means
        keys.used("healthcheck");
        return Probes::default();
    }
    let command: Vec<String> = match hc.test.first().map(String::as_str) {
        Some("CMD") => hc.test[1..].to_vec(),
        Some("CMD-SHELL") => {
            let mut c = vec!["/bin/sh".to_owned(), "-c".to_owned()];
            c.push(hc.test[1..].join(" "));
            c
        }
        Some("NONE") => {
            keys.used("healthcheck");
            return Probes::default();
        }
        _ => {
            keys.drop(
                "healthcheck",
                "no test (and none from the image in the store)",
            );
            return Probes::default();
        }
    };
    keys.used("healthcheck.test");
    let mut time = |key: &str, value: Option<i64>, default: i64| -> i64 {
        let nanos = value.unwrap_or(default);
        let (secs, rounded) = seconds(nanos, 1);
        if value.is_some() {
            if rounded {
                keys.changed(
                    format!("healthcheck.{key}"),
                    format!(
                        "{} rounded up to {secs}s (Kubernetes counts whole seconds)",
                        go(nanos)
                    ),
                );
            } else {
                keys.used(format!("healthcheck.{key}"));
            }
        }
        secs
    };
    let period = time("interval", hc.interval.map(|d| d.0), DEFAULT_INTERVAL);
    let timeout = time("timeout", hc.timeout.map(|d| d.0), DEFAULT_TIMEOUT);
    let start_interval = time(
        "start_interval",
        hc.start_interval.map(|d| d.0),
        DEFAULT_START_INTERVAL,
    );
    keys.used("healthcheck.retries");
    keys.used("healthcheck.start_period");
    keys.used("healthcheck.disable");
    let retries = hc.retries.unwrap_or(DEFAULT_RETRIES).max(1);
    let exec = json!({"command": command});
    let probe = |period: i64, failures: u64| {
        json!({
            "exec": exec,
            "periodSeconds": period,
            "timeoutSeconds": timeout,
            "failureThreshold": failures,
        })
    };
    let start_period = hc.start_period.map(|d| d.0).unwrap_or(0);
    let startup = (start_period > 0).then(|| {
        let (grace, _) = seconds(start_period, 0);
        let tries = (grace + start_interval - 1) / start_interval;
        probe(start_interval, tries as u64 + retries)
    });
    Probes {
        startup,
        readiness: Some(probe(period, retries)),
        liveness: Some(probe(period, retries)),
    }
}

/// A duration as Compose writes it (Go's `Duration.String()`).
fn go(nanos: i64) -> String {
    rstack_compose::units::Duration(nanos).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstack_compose::units::Duration;

    fn secs(s: f64) -> Option<Duration> {
        Some(Duration((s * 1e9) as i64))
    }

    #[test]
    fn a_cmd_healthcheck_becomes_three_probes() {
        let hc = Healthcheck {
            test: vec![
                "CMD".into(),
                "wget".into(),
                "-q".into(),
                "http://127.0.0.1/".into(),
            ],
            interval: secs(2.0),
            start_period: secs(10.0),
            ..Default::default()
        };
        let mut keys = Keys::default();
        let p = probes(Some(&hc), &mut keys);
        let ready = json!({"exec": {"command": ["wget", "-q", "http://127.0.0.1/"]},
                           "periodSeconds": 2, "timeoutSeconds": 30, "failureThreshold": 3});
        assert_eq!(p.readiness.as_ref(), Some(&ready));
        assert_eq!(p.liveness.as_ref(), Some(&ready));
        // 10s of start period at the default 5s start interval, then 3 retries
        assert_eq!(
            p.startup,
            Some(
                json!({"exec": {"command": ["wget", "-q", "http://127.0.0.1/"]},
                        "periodSeconds": 5, "timeoutSeconds": 30, "failureThreshold": 5})
            )
        );
        let v = serde_json::to_value(&hc).unwrap();
        assert!(
            keys.report("services.api", &json!({"healthcheck": v}))
                .is_empty()
        );
    }

    #[test]
    fn shell_tests_run_through_sh_and_times_round_up() {
        let hc = Healthcheck {
            test: vec![
                "CMD-SHELL".into(),
                "curl -f http://localhost || exit 1".into(),
            ],
            interval: secs(0.5),
            timeout: secs(3.0),
            retries: Some(5),
            start_interval: secs(1.0),
            ..Default::default()
        };
        let mut keys = Keys::default();
        let p = probes(Some(&hc), &mut keys);
        let r = p.readiness.unwrap();
        assert_eq!(
            r["exec"]["command"],
            json!(["/bin/sh", "-c", "curl -f http://localhost || exit 1"])
        );
        assert_eq!(
            (r["periodSeconds"].clone(), r["timeoutSeconds"].clone()),
            (json!(1), json!(3))
        );
        assert_eq!(r["failureThreshold"], 5);
        assert_eq!(p.startup, None, "no start period, no startup probe");
        let report = keys.report(
            "services.a",
            &json!({"healthcheck": serde_json::to_value(&hc).unwrap()}),
        );
        assert_eq!(report.len(), 1);
        assert_eq!(
            report[0].to_string(),
            "services.a.healthcheck.interval: changed: 500ms rounded up to 1s (Kubernetes counts whole seconds)"
        );
    }

    #[test]
    fn disabled_and_none_give_no_probes() {
        let mut keys = Keys::default();
        let off = Healthcheck {
            disable: Some(true),
            test: vec!["CMD".into(), "true".into()],
            ..Default::default()
        };
        assert_eq!(probes(Some(&off), &mut keys), Probes::default());
        let none = Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        assert_eq!(probes(Some(&none), &mut keys), Probes::default());
        assert_eq!(probes(None, &mut keys), Probes::default());
        let v = json!({"healthcheck": serde_json::to_value(&off).unwrap()});
        assert!(keys.report("services.a", &v).is_empty());
    }
}
