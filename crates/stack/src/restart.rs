//! Restart policies (`restart:` and `deploy.restart_policy`) and Docker's
//! backoff: the first restart waits 100 ms, each next one twice as long;
//! a container that stayed up 10 s resets the delay.
//!
//! The decisions are pure: [`Policy::restart_after`] takes what the
//! supervisor knows when a container exits ([`Exit`]). A user's `stop` is
//! remembered in the container's record (`user_stopped`): no policy brings
//! it back, and a supervisor started again later leaves it stopped unless
//! `up` names its service (see the supervisor's reconcile plan).

use std::time::Duration;

/// A bad `restart:` value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "service {service}: invalid restart policy '{value}' (expected no, always, on-failure[:max] or unless-stopped)"
    )]
    Bad { service: String, value: String },
}

/// When the supervisor restarts a container that exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    #[default]
    No,
    Always,
    OnFailure {
        max: Option<u32>,
    },
    UnlessStopped,
}

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
const RESET_AFTER: Duration = Duration::from_secs(10);

impl Policy {
    /// Parses a service's policy: `restart:`, else `deploy.restart_policy`.
    pub(crate) fn of_service(
        service_name: &str,
        svc: &rstack_compose::model::Service,
    ) -> Result<Policy, Error> {
        if let Some(r) = &svc.restart {
            return Policy::parse(service_name, r);
        }
        if let Some(rp) = svc.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()) {
            return Ok(match rp.condition.as_deref() {
                Some("none") => Policy::No,
                Some("on-failure") => Policy::OnFailure {
                    max: rp.max_attempts.map(|m| m as u32),
                },
                _ => Policy::Always,
            });
        }
        Ok(Policy::No)
    }

    pub fn parse(service: &str, value: &str) -> Result<Policy, Error> {
        let bad = || Error::Bad {
            service: service.to_owned(),
            value: value.to_owned(),
        };
        Ok(match value {
            "no" | "" => Policy::No,
            "always" => Policy::Always,
            "unless-stopped" => Policy::UnlessStopped,
            "on-failure" => Policy::OnFailure { max: None },
            v => match v.strip_prefix("on-failure:") {
                Some(n) => Policy::OnFailure {
                    max: Some(n.parse().map_err(|_| bad())?),
                },
                None => return Err(bad()),
            },
        })
    }

    /// Whether an exit (`code`, `None` = unknown, counted as a failure)
    /// after `restarts` restarts calls for another one. A user stop never
    /// restarts.
    pub(crate) fn should_restart(
        self,
        code: Option<i32>,
        restarts: u32,
        user_stopped: bool,
    ) -> bool {
        if user_stopped {
            return false;
        }
        match self {
            Policy::No => false,
            Policy::Always | Policy::UnlessStopped => true,
            Policy::OnFailure { max } => code != Some(0) && max.is_none_or(|m| restarts < m),
        }
    }
}

/// What the supervisor knows when one of its containers has exited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Exit {
    /// Its exit code; `None`: unknown (counted as a failure).
    pub code: Option<i32>,
    /// Restarts so far by its policy.
    pub restarts: u32,
    /// The user stopped it (`stop`, `restart`'s stop): remembered.
    pub user_stopped: bool,
    /// A stop (by the user or by `restart`) is under way.
    pub stop_requested: bool,
    /// The project is being stopped or taken down.
    pub shutting: bool,
}

impl Policy {
    /// Whether the supervisor restarts a container after `exit`: never
    /// while it is being stopped or the project goes down, otherwise as
    /// [`Policy::should_restart`] says.
    pub(crate) fn restart_after(self, exit: &Exit) -> bool {
        !exit.stop_requested
            && !exit.shutting
            && self.should_restart(exit.code, exit.restarts, exit.user_stopped)
    }
}

/// Docker's restart delay.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST_DELAY }
    }
}

impl Backoff {
    /// The delay before the next restart of a container that ran for
    /// `uptime`; doubles the one after.
    pub(crate) fn delay(&mut self, uptime: Duration) -> Duration {
        if uptime >= RESET_AFTER {
            self.next = FIRST_DELAY;
        }
        let d = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_policies() {
        assert_eq!(Policy::parse("s", "no").unwrap(), Policy::No);
        assert_eq!(Policy::parse("s", "always").unwrap(), Policy::Always);
        assert_eq!(
            Policy::parse("s", "on-failure:3").unwrap(),
            Policy::OnFailure { max: Some(3) }
        );
        let e = Policy::parse("web", "sometimes").unwrap_err().to_string();
        assert!(e.contains("web") && e.contains("sometimes"), "{e}");
        assert!(Policy::parse("s", "on-failure:x").is_err());
    }

    #[test]
    fn decisions() {
        let of = Policy::OnFailure { max: Some(2) };
        assert!(of.should_restart(Some(1), 0, false));
        assert!(of.should_restart(None, 1, false));
        assert!(!of.should_restart(Some(1), 2, false));
        assert!(!of.should_restart(Some(0), 0, false));
        assert!(Policy::Always.should_restart(Some(0), 99, false));
        assert!(!Policy::Always.should_restart(Some(1), 0, true));
        assert!(!Policy::UnlessStopped.should_restart(Some(1), 0, true));
        assert!(!Policy::No.should_restart(Some(1), 0, false));
    }

    #[test]
    fn every_policy_after_an_exit() {
        let exit = |code| Exit {
            code,
            ..Exit::default()
        };
        let cases = [
            (Policy::No, Some(1), false),
            (Policy::No, Some(0), false),
            (Policy::Always, Some(0), true),
            (Policy::Always, Some(137), true),
            (Policy::UnlessStopped, Some(0), true),
            (Policy::UnlessStopped, None, true),
            (Policy::OnFailure { max: None }, Some(0), false),
            (Policy::OnFailure { max: None }, Some(2), true),
            (Policy::OnFailure { max: None }, None, true),
        ];
        for (policy, code, restart) in cases {
            assert_eq!(
                policy.restart_after(&exit(code)),
                restart,
                "{policy:?} {code:?}"
            );
        }
    }

    #[test]
    fn on_failure_counts_its_restarts() {
        let p = Policy::parse("s", "on-failure:3").unwrap();
        let after = |restarts| Exit {
            code: Some(1),
            restarts,
            ..Exit::default()
        };
        assert!(p.restart_after(&after(0)));
        assert!(p.restart_after(&after(2)));
        assert!(!p.restart_after(&after(3)));
    }

    #[test]
    fn stops_and_shutdown_win_over_every_policy() {
        for p in [
            Policy::Always,
            Policy::UnlessStopped,
            Policy::OnFailure { max: None },
        ] {
            let failed = Exit {
                code: Some(1),
                ..Exit::default()
            };
            assert!(p.restart_after(&failed), "{p:?}");
            // the "unless-stopped" memory, which `always` shares while
            // the supervisor runs: a user stop is never undone by a policy
            let user = Exit {
                user_stopped: true,
                ..failed
            };
            assert!(!p.restart_after(&user), "{p:?}");
            let stopping = Exit {
                stop_requested: true,
                ..failed
            };
            assert!(!p.restart_after(&stopping), "{p:?}");
            let down = Exit {
                shutting: true,
                ..failed
            };
            assert!(!p.restart_after(&down), "{p:?}");
        }
    }

    #[test]
    fn deploy_restart_policy_is_the_fallback() {
        use rstack_compose::model::{Deploy, RestartPolicy, Service};
        let svc = |condition: Option<&str>, max: Option<u64>| Service {
            deploy: Some(Deploy {
                restart_policy: Some(RestartPolicy {
                    condition: condition.map(str::to_owned),
                    max_attempts: max,
                    ..RestartPolicy::default()
                }),
                ..Deploy::default()
            }),
            ..Service::default()
        };
        let of = |s: &Service| Policy::of_service("s", s).unwrap();
        assert_eq!(of(&svc(Some("none"), None)), Policy::No);
        assert_eq!(
            of(&svc(Some("on-failure"), Some(2))),
            Policy::OnFailure { max: Some(2) }
        );
        assert_eq!(of(&svc(None, None)), Policy::Always);
        let mut own = svc(Some("none"), None);
        own.restart = Some("unless-stopped".into());
        assert_eq!(of(&own), Policy::UnlessStopped);
        assert_eq!(of(&Service::default()), Policy::No);
    }

    #[test]
    fn backoff_doubles_and_resets() {
        let mut b = Backoff::default();
        let short = Duration::from_secs(1);
        assert_eq!(b.delay(short), Duration::from_millis(100));
        assert_eq!(b.delay(short), Duration::from_millis(200));
        assert_eq!(b.delay(short), Duration::from_millis(400));
        assert_eq!(b.delay(Duration::from_secs(10)), Duration::from_millis(100));
        for _ in 0..20 {
            b.delay(short);
        }
        assert_eq!(b.delay(short), MAX_DELAY);
    }
}
