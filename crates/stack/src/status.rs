//! What a recorded container is *now*, as `ps`, `inspect` and the other
//! commands report it. A record says what the supervisor last saw; whether
//! the process still runs is checked against the kernel: its pid and
//! /proc start time must still name a live process (a pidfd pins it, so a
//! reused pid is never mistaken for the container), and a frozen cgroup
//! makes a running container `paused`. The wording follows `docker ps`.

use std::time::Duration;

use crate::process::Pidfd;
use crate::state::{ContainerRecord, Status, SupervisorRecord};

/// The record's process, if it still is the one recorded and has not exited.
pub fn process(r: &ContainerRecord) -> Option<Pidfd> {
    match (r.pid, r.start_time) {
        (Some(p), Some(s)) => Pidfd::open_verified(p, s),
        _ => None,
    }
}

/// Whether the record's process is really alive (pid + start time).
pub fn is_alive(r: &ContainerRecord) -> bool {
    process(r).is_some_and(|fd| !fd.exited())
}

/// A running record's process as the kernel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// Recorded as running and its process is alive.
    pub alive: bool,
    /// Alive, with its cgroup frozen.
    pub paused: bool,
}

/// Whether a record's container really runs, and whether it is paused.
pub fn liveness(r: &ContainerRecord) -> Liveness {
    let alive = r.status == Status::Running && is_alive(r);
    let paused = alive && crate::cgroups::is_paused(&r.cgroup_leaves);
    Liveness { alive, paused }
}

/// Waits up to `timeout` for a supervisor to exit (at once when it is
/// already gone).
pub fn wait_supervisor_exit(sup: &SupervisorRecord, timeout: Duration) {
    if let Some(p) = Pidfd::open_verified(sup.pid, sup.start_time) {
        p.wait_exit(timeout);
    }
}

/// The state word of `ps --format json` (`running`, `exited`...).
pub fn state_word(r: &ContainerRecord) -> &'static str {
    let l = liveness(r);
    docker_state(r.status, l.alive, l.paused)
}

/// Docker's state word for a recorded status, given whether the process
/// is alive and its cgroup frozen: a `running` record whose process died
/// without the supervisor noticing (it was not running) is `exited`.
pub fn docker_state(status: Status, alive: bool, paused: bool) -> &'static str {
    match status {
        Status::Running if !alive => "exited",
        Status::Running if paused => "paused",
        s => s.as_str(),
    }
}

/// `Up 5 seconds (healthy)`, `Exited (0) 3 seconds ago`, like docker ps.
pub fn status_text(r: &ContainerRecord) -> String {
    let alive = is_alive(r);
    match r.status {
        Status::Running if alive => {
            let mut s = format!("Up {}", human_duration(since(r.started_at.as_deref())));
            if crate::cgroups::is_paused(&r.cgroup_leaves) {
                s.push_str(" (Paused)");
            } else if let Some(h) = &r.health {
                s.push_str(&format!(" ({})", h.status.as_str()));
            }
            s
        }
        Status::Running | Status::Exited => {
            let ago = r
                .finished_at
                .as_deref()
                .map(|f| format!(" {} ago", human_duration(since(Some(f)))))
                .unwrap_or_default();
            format!("Exited ({}){ago}", exit_code_text(r))
        }
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            exit_code_text(r),
            human_duration(since(r.finished_at.as_deref()))
        ),
        Status::Creating | Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
    }
}

/// The recorded exit code, `unknown` when there is none.
fn exit_code_text(r: &ContainerRecord) -> String {
    r.exit_code.map_or("unknown".to_owned(), |c| c.to_string())
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let m = s / 60;
    if m == 1 {
        return "About a minute".into();
    }
    if m < 60 {
        return format!("{m} minutes");
    }
    let h = m / 60;
    if h == 1 {
        return "About an hour".into();
    }
    if h < 48 {
        return format!("{h} hours");
    }
    if h < 24 * 7 * 2 {
        return format!("{} days", h / 24);
    }
    if h < 24 * 30 * 2 {
        return format!("{} weeks", h / 24 / 7);
    }
    if h < 24 * 365 * 2 {
        return format!("{} months", h / 24 / 30);
    }
    format!("{} years", h / 24 / 365)
}

/// Time since an RFC 3339 timestamp.
pub fn since(ts: Option<&str>) -> Duration {
    ts.and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .and_then(|t| Duration::try_from(jiff::Timestamp::now().duration_since(t)).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: Status) -> ContainerRecord {
        let mut r = ContainerRecord::new("p-web-1", "web", 1);
        r.status = status;
        r
    }

    #[test]
    fn human_durations_match_docker() {
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(Duration::from_secs(5)), "5 seconds");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human_duration(Duration::from_secs(7200)), "2 hours");
        assert_eq!(human_duration(Duration::from_secs(3 * 86400)), "3 days");
    }

    #[test]
    fn docker_states() {
        assert_eq!(docker_state(Status::Running, true, false), "running");
        assert_eq!(docker_state(Status::Running, true, true), "paused");
        assert_eq!(docker_state(Status::Running, false, false), "exited");
        assert_eq!(docker_state(Status::Creating, false, false), "created");
        assert_eq!(docker_state(Status::Restarting, false, false), "restarting");
        assert_eq!(docker_state(Status::Exited, false, false), "exited");
        assert_eq!(docker_state(Status::Removing, false, false), "removing");
    }

    #[test]
    fn a_record_without_a_live_process_is_not_running() {
        let mut r = record(Status::Running);
        assert!(!is_alive(&r));
        r.pid = Some(std::process::id() as i32);
        r.start_time = Some(crate::process::start_time(r.pid.unwrap()).unwrap() + 1);
        assert!(!is_alive(&r), "a reused pid is not the container");
        assert_eq!(
            liveness(&r),
            Liveness {
                alive: false,
                paused: false
            }
        );
        assert_eq!(state_word(&r), "exited");
        r.exit_code = Some(2);
        assert_eq!(status_text(&r), "Exited (2)");
    }

    #[test]
    fn a_live_process_is_up() {
        let mut r = record(Status::Running);
        let me = std::process::id() as i32;
        r.pid = Some(me);
        r.start_time = crate::process::start_time(me);
        assert!(is_alive(&r));
        assert_eq!(state_word(&r), "running");
        assert_eq!(status_text(&r), "Up Less than a second");
    }

    #[test]
    fn other_statuses_read_like_docker() {
        assert_eq!(status_text(&record(Status::Created)), "Created");
        assert_eq!(status_text(&record(Status::Creating)), "Created");
        assert_eq!(
            status_text(&record(Status::Removing)),
            "Removal In Progress"
        );
        assert_eq!(
            status_text(&record(Status::Restarting)),
            "Restarting (unknown) Less than a second ago"
        );
    }
}
