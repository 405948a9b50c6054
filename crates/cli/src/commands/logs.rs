//! `rstack logs`: the containers' json logs with `name  | ` prefixes, like
//! `docker compose logs`. Read straight from the files the supervisor
//! writes, so `-f` keeps following while a supervisor restarts.

use std::io::Write;
use std::time::Duration;

use rstack_stack::logs::{Entry, Follower};
use rstack_stack::state::ProjectPaths;

use super::stack_common;
use crate::global::GlobalOpts;

/// What to read of a container's log and how to print it: shared by
/// `logs` and `container logs`.
#[derive(Debug, clap::Args)]
pub struct Reading {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs for each container
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub read: Reading,
    /// Produce monochrome output
    #[arg(long = "no-color")]
    pub no_color: bool,
    /// Don't print prefix in logs
    #[arg(long = "no-log-prefix")]
    pub no_log_prefix: bool,
    /// Services to show
    pub services: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let (project, _env, pp) = stack_common::load_or_name(global, &args.services)?;
    if let Some(p) = &project {
        for s in &args.services {
            if !p.services.contains_key(s) {
                anyhow::bail!("no such service: {s}");
            }
        }
    }
    let names: Vec<String> = pp
        .containers()?
        .into_iter()
        .filter(|r| !r.oneoff && (args.services.is_empty() || args.services.contains(&r.service)))
        .map(|r| r.name)
        .collect();
    let prefix = (!args.no_log_prefix).then(|| stack_common::use_color(args.no_color));
    show(&pp, &names, &args.read, prefix)
}

/// Prints the logs of the project's containers `names` as `args` asks;
/// `prefix`: `name  | ` before each line (coloured when true), none for
/// `container logs NAME`.
pub(crate) fn show(
    pp: &ProjectPaths,
    names: &[String],
    args: &Reading,
    prefix: Option<bool>,
) -> anyhow::Result<u8> {
    let tail: Option<usize> = match args.tail.as_str() {
        "all" | "-1" => None,
        n => Some(n.parse().map_err(|_| {
            anyhow::anyhow!("invalid --tail value {n:?}: expected a number or all")
        })?),
    };
    let since = args
        .since
        .as_deref()
        .map(|t| parse_time("--since", t))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|t| parse_time("--until", t))
        .transpose()?;
    let wanted = |e: &Entry| {
        if since.is_none() && until.is_none() {
            return true;
        }
        let Ok(t) = e.time.parse::<jiff::Timestamp>() else {
            return false;
        };
        since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u)
    };
    let width = names.iter().map(String::len).max().unwrap_or(0);
    let print = |i: usize, e: &Entry| {
        let mut line = String::new();
        if let Some(color) = prefix {
            line.push_str(&stack_common::prefix(&names[i], width, i, color));
        }
        if args.timestamps {
            line.push_str(&e.time);
            line.push(' ');
        }
        line.push_str(&e.log);
        if !line.ends_with('\n') {
            line.push('\n');
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
    };
    let mut followers = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let path = pp.json_log(name);
        // Start following where the snapshot ends so nothing is lost or doubled.
        let follower = Follower::at_end(&path);
        let all = rstack_stack::logs::read_all(&path)?;
        let all: Vec<&Entry> = all.iter().filter(|e| wanted(e)).collect();
        let start = tail.map_or(0, |n| all.len().saturating_sub(n));
        for e in &all[start..] {
            print(i, e);
        }
        followers.push(follower);
    }
    let _ = std::io::stdout().flush();
    if !args.follow {
        return Ok(0);
    }
    loop {
        let mut any = false;
        for (i, f) in followers.iter_mut().enumerate() {
            for e in f.poll() {
                any = true;
                if wanted(&e) {
                    print(i, &e);
                }
            }
        }
        let _ = std::io::stdout().flush();
        if !any {
            // docker compose logs -f ends when the project has no running container left
            let running = pp
                .containers()
                .map(|v| v.iter().any(rstack_stack::status::is_alive))
                .unwrap_or(false);
            if !running && rstack_stack::supervisor::running_supervisor(pp).is_none() {
                return Ok(0);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Docker's `--since`/`--until` values: an RFC 3339 timestamp, a date, a
/// Unix time in seconds (`1700000000.5`), or a duration back from now
/// (`42m`, `1h30m`).
fn parse_time(flag: &str, v: &str) -> anyhow::Result<jiff::Timestamp> {
    if let Ok(t) = v.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    if let Ok(d) = v.parse::<jiff::civil::Date>() {
        if let Ok(t) = d.to_zoned(jiff::tz::TimeZone::UTC) {
            return Ok(t.timestamp());
        }
    }
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            if let Ok(t) = jiff::Timestamp::from_nanosecond((secs * 1e9) as i128) {
                return Ok(t);
            }
        }
    }
    if let Ok(d) = rstack_compose::units::Duration::parse(v) {
        let back = jiff::SignedDuration::from_nanos(d.0);
        if let Ok(t) = jiff::Timestamp::now().checked_sub(back) {
            return Ok(t);
        }
    }
    anyhow::bail!(
        "invalid value {v:?} for {flag}: expected a timestamp (2013-01-02T13:23:37Z), a Unix time or a duration (42m)"
    )
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn time_forms() {
        let t = parse_time("--since", "2013-01-02T13:23:37Z").unwrap();
        assert_eq!(t.as_second(), 1357133017);
        assert_eq!(
            parse_time("--since", "2013-01-02").unwrap().as_second(),
            1357084800
        );
        assert_eq!(
            parse_time("--since", "1357133017").unwrap().as_second(),
            1357133017
        );
        let ago = parse_time("--since", "1h30m").unwrap();
        let d = jiff::Timestamp::now().as_second() - ago.as_second();
        assert!((5399..=5401).contains(&d), "{d}");
        let e = parse_time("--until", "yesterday").unwrap_err().to_string();
        assert!(e.contains("--until") && e.contains("yesterday"), "{e}");
    }
}
