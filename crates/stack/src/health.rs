//! Healthchecks as Docker runs them, driven by the supervisor: a probe is
//! a process exec'd in the container; exit 0 = healthy. The status starts
//! as `starting`; `retries` consecutive failures make it `unhealthy`; one
//! success makes it `healthy`. Failures during `start_period` do not count.
//!
//! Cadence: during `start_period` (while still `starting`) the probe runs
//! every `start_interval` when set, else at a fast cadence — 50 ms after
//! the start, then 100, 150, 200, and every 250 ms — so a dependant
//! waiting on `service_healthy` starts as soon as the service is ready
//! (most are within a few hundred ms) — then every `interval`.

use std::collections::VecDeque;
use std::time::Duration;

use crate::state::{Health, HealthRecord, ProbeResult};

/// A bad healthcheck.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "service {service}: healthcheck test must start with NONE, CMD or CMD-SHELL, found {found:?}"
    )]
    BadTest { service: String, found: Vec<String> },
}

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u64 = 3;
/// Probe cadence during start_period when start_interval is not set.
pub(crate) const FAST_START_INTERVAL: Duration = Duration::from_millis(250);
/// The fast cadence's first delay, and its step up to [`FAST_START_INTERVAL`].
const FAST_START_STEP: Duration = Duration::from_millis(50);
/// Probe results kept (docker keeps 5).
const KEEP_RESULTS: usize = 5;
/// Output bytes kept per probe (docker keeps 4096).
const KEEP_OUTPUT: usize = 4096;

/// What to run and when.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Check {
    /// The argv to exec (`CMD-SHELL x` becomes `/bin/sh -c x`).
    pub argv: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u64,
    pub start_period: Duration,
    pub start_interval: Option<Duration>,
}

impl Check {
    /// The service's healthcheck; `None` with `disable: true`, `NONE` or
    /// no test at all.
    pub(crate) fn of_service(
        service: &str,
        hc: Option<&rstack_compose::model::Healthcheck>,
    ) -> Result<Option<Check>, Error> {
        let Some(hc) = hc else { return Ok(None) };
        if hc.disable == Some(true) {
            return Ok(None);
        }
        let argv = match hc.test.first().map(String::as_str) {
            None => return Ok(None),
            Some("NONE") => return Ok(None),
            Some("CMD") if hc.test.len() > 1 => hc.test[1..].to_vec(),
            Some("CMD-SHELL") if hc.test.len() == 2 => {
                vec!["/bin/sh".into(), "-c".into(), hc.test[1].clone()]
            }
            _ => {
                return Err(Error::BadTest {
                    service: service.to_owned(),
                    found: hc.test.clone(),
                });
            }
        };
        let d = |v: Option<rstack_compose::units::Duration>| v.map(|d| d.as_std());
        Ok(Some(Check {
            argv,
            interval: d(hc.interval)
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_INTERVAL),
            timeout: d(hc.timeout)
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_TIMEOUT),
            retries: hc.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES),
            start_period: d(hc.start_period).unwrap_or_default(),
            start_interval: d(hc.start_interval).filter(|d| !d.is_zero()),
        }))
    }
}

/// The healthcheck a service's containers run: the service's own, with
/// what it leaves unset taken from the image's `HEALTHCHECK`, field by
/// field (the Docker daemon's merge of a container's healthcheck with its
/// image's). `disable: true` wins over the image.
pub fn with_image(
    service: Option<&rstack_compose::model::Healthcheck>,
    image: Option<&rstack_images::docker_config::Healthcheck>,
) -> Option<rstack_compose::model::Healthcheck> {
    let Some(img) = image else {
        return service.cloned();
    };
    let mut hc = service.cloned().unwrap_or_default();
    if hc.disable == Some(true) {
        return Some(hc);
    }
    let nanos =
        |n: u64| (n > 0).then(|| rstack_compose::units::Duration(n.min(i64::MAX as u64) as i64));
    if hc.test.is_empty() {
        hc.test = img.test.clone();
    }
    hc.interval = hc.interval.or(nanos(img.interval));
    hc.timeout = hc.timeout.or(nanos(img.timeout));
    hc.start_period = hc.start_period.or(nanos(img.start_period));
    hc.start_interval = hc.start_interval.or(nanos(img.start_interval));
    hc.retries = hc.retries.or((img.retries > 0).then_some(img.retries));
    Some(hc)
}

/// The health state machine of one container.
#[derive(Debug, Clone)]
pub(crate) struct Tracker {
    pub check: Check,
    status: Health,
    streak: u64,
    log: VecDeque<ProbeResult>,
    /// Probes recorded by this tracker (ramps the fast start cadence).
    probes: u32,
}

impl Tracker {
    pub(crate) fn new(check: Check) -> Tracker {
        Tracker {
            check,
            status: Health::Starting,
            streak: 0,
            log: VecDeque::new(),
            probes: 0,
        }
    }

    pub(crate) fn status(&self) -> Health {
        self.status
    }

    /// How long to wait before the next probe, `uptime` after the start.
    pub(crate) fn next_delay(&self, uptime: Duration) -> Duration {
        if self.status == Health::Starting && uptime < self.check.start_period {
            self.check.start_interval.unwrap_or_else(|| {
                FAST_START_STEP
                    .checked_mul(self.probes.saturating_add(1))
                    .map_or(FAST_START_INTERVAL, |d| d.min(FAST_START_INTERVAL))
            })
        } else {
            self.check.interval
        }
    }

    /// Takes a probe's result (`exit_code` 0 = success); returns whether
    /// the status changed.
    pub(crate) fn record(&mut self, mut result: ProbeResult, uptime: Duration) -> bool {
        let before = self.status;
        self.probes = self.probes.saturating_add(1);
        if result.output.len() > KEEP_OUTPUT {
            let mut cut = KEEP_OUTPUT;
            while !result.output.is_char_boundary(cut) {
                cut -= 1;
            }
            result.output.truncate(cut);
        }
        if result.exit_code == 0 {
            self.status = Health::Healthy;
            self.streak = 0;
        } else if !(self.status == Health::Starting && uptime < self.check.start_period) {
            self.streak += 1;
            if self.streak >= self.check.retries {
                self.status = Health::Unhealthy;
            }
        }
        self.log.push_back(result);
        while self.log.len() > KEEP_RESULTS {
            self.log.pop_front();
        }
        before != self.status
    }

    pub(crate) fn to_record(&self) -> HealthRecord {
        HealthRecord {
            status: self.status,
            failing_streak: self.streak,
            log: self.log.iter().cloned().collect(),
        }
    }

    /// Resumes from a recorded state (re-adoption).
    pub(crate) fn resume(check: Check, rec: &HealthRecord) -> Tracker {
        Tracker {
            check,
            status: rec.status,
            streak: rec.failing_streak,
            log: rec.log.iter().cloned().collect(),
            // a fresh record (the container just started) ramps from 0
            probes: u32::try_from(rec.log.len()).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_hc() -> rstack_images::docker_config::Healthcheck {
        rstack_images::docker_config::Healthcheck {
            test: vec!["CMD-SHELL".into(), "wget -q localhost".into()],
            interval: 5_000_000_000,
            timeout: 0,
            start_period: 0,
            start_interval: 0,
            retries: 7,
        }
    }

    #[test]
    fn image_healthcheck_used_when_the_service_has_none() {
        let hc = with_image(None, Some(&image_hc())).unwrap();
        let c = Check::of_service("web", Some(&hc)).unwrap().unwrap();
        assert_eq!(c.argv, ["/bin/sh", "-c", "wget -q localhost"]);
        assert_eq!(c.interval, Duration::from_secs(5));
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.retries, 7);
        assert_eq!(with_image(None, None), None);
    }

    #[test]
    fn service_fields_win_over_the_image() {
        let svc = rstack_compose::model::Healthcheck {
            interval: Some(rstack_compose::units::Duration(1_000_000_000)),
            ..Default::default()
        };
        let hc = with_image(Some(&svc), Some(&image_hc())).unwrap();
        let c = Check::of_service("web", Some(&hc)).unwrap().unwrap();
        assert_eq!(
            c.argv,
            ["/bin/sh", "-c", "wget -q localhost"],
            "test from the image"
        );
        assert_eq!(c.interval, Duration::from_secs(1));
        assert_eq!(c.retries, 7);
        let own = rstack_compose::model::Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            ..Default::default()
        };
        let hc = with_image(Some(&own), Some(&image_hc())).unwrap();
        assert_eq!(hc.test, ["CMD", "true"]);
    }

    #[test]
    fn disable_and_none_turn_the_image_check_off() {
        let off = rstack_compose::model::Healthcheck {
            disable: Some(true),
            ..Default::default()
        };
        let hc = with_image(Some(&off), Some(&image_hc()));
        assert_eq!(Check::of_service("web", hc.as_ref()).unwrap(), None);
        let none = rstack_compose::model::Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        let hc = with_image(Some(&none), Some(&image_hc()));
        assert_eq!(Check::of_service("web", hc.as_ref()).unwrap(), None);
    }
    use rstack_compose::model::Healthcheck;
    use rstack_compose::units::Duration as D;

    fn probe(code: i32) -> ProbeResult {
        ProbeResult {
            start: String::new(),
            end: String::new(),
            exit_code: code,
            output: "x".repeat(5000),
        }
    }

    #[test]
    fn parses_tests() {
        let hc = Healthcheck {
            test: vec!["CMD-SHELL".into(), "wget -q localhost".into()],
            interval: Some(D(2_000_000_000)),
            ..Default::default()
        };
        let c = Check::of_service("web", Some(&hc)).unwrap().unwrap();
        assert_eq!(c.argv, ["/bin/sh", "-c", "wget -q localhost"]);
        assert_eq!(c.interval, Duration::from_secs(2));
        assert_eq!(c.retries, 3);
        let none = Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        assert!(Check::of_service("web", Some(&none)).unwrap().is_none());
        let bad = Healthcheck {
            test: vec!["RUN".into(), "x".into()],
            ..Default::default()
        };
        let e = Check::of_service("web", Some(&bad))
            .unwrap_err()
            .to_string();
        assert!(e.contains("web") && e.contains("RUN"), "{e}");
    }

    #[test]
    fn state_machine() {
        let check = Check {
            argv: vec!["true".into()],
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(1),
            retries: 2,
            start_period: Duration::from_secs(5),
            start_interval: None,
        };
        let mut t = Tracker::new(check);
        assert_eq!(t.next_delay(Duration::ZERO), Duration::from_millis(50));
        // failures in the start period don't count
        assert!(!t.record(probe(1), Duration::from_secs(1)));
        assert_eq!(t.next_delay(Duration::ZERO), Duration::from_millis(100));
        assert!(!t.record(probe(1), Duration::from_secs(2)));
        assert_eq!(t.status(), Health::Starting);
        for _ in 0..5 {
            t.record(probe(1), Duration::from_secs(2));
        }
        assert_eq!(t.next_delay(Duration::from_secs(2)), FAST_START_INTERVAL);
        assert!(t.record(probe(0), Duration::from_secs(3)));
        assert_eq!(t.status(), Health::Healthy);
        assert_eq!(
            t.next_delay(Duration::from_secs(3)),
            Duration::from_secs(30)
        );
        assert!(!t.record(probe(1), Duration::from_secs(40)));
        assert!(t.record(probe(1), Duration::from_secs(70)));
        assert_eq!(t.status(), Health::Unhealthy);
        let rec = t.to_record();
        assert_eq!(rec.log.len(), 5);
        assert_eq!(rec.failing_streak, 2);
        assert!(rec.log[0].output.len() <= 4096);
        let r = Tracker::resume(t.check.clone(), &rec);
        assert_eq!(r.status(), Health::Unhealthy);
        // resumed in its start period: the ramp goes on from the probes
        // recorded (none for a container that just started)
        let mut starting = rec.clone();
        starting.status = Health::Starting;
        let r = Tracker::resume(t.check.clone(), &starting);
        assert_eq!(r.next_delay(Duration::ZERO), FAST_START_INTERVAL);
        starting.log.clear();
        let r = Tracker::resume(t.check.clone(), &starting);
        assert_eq!(r.next_delay(Duration::ZERO), Duration::from_millis(50));
    }
}
