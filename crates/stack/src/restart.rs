//! Restart policies (`restart:` and `deploy.restart_policy`) and Docker's
//! backoff: the first restart waits 100 ms, each next one twice as long;
//! a container that stayed up 10 s resets the delay.

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
    pub fn of_service(
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
    pub fn should_restart(self, code: Option<i32>, restarts: u32, user_stopped: bool) -> bool {
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

/// Docker's restart delay.
#[derive(Debug, Clone)]
pub struct Backoff {
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
    pub fn delay(&mut self, uptime: Duration) -> Duration {
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
