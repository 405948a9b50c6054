//! Instructions that only change the image config (ARG, ENV, LABEL, USER,
//! CMD, ENTRYPOINT, EXPOSE, VOLUME, HEALTHCHECK, STOPSIGNAL, SHELL,
//! ONBUILD, MAINTAINER): each adds an empty-layer history entry, as
//! Docker's do.

use std::collections::BTreeMap;

use rstack_images::docker_config::Healthcheck;

use super::state::State;
use super::{Ctx, step_err};
use crate::dockerfile::{Cmd, Inst, Kind};
use crate::{Error, words};

/// Go's `time.ParseDuration` for HEALTHCHECK flags, in nanoseconds (a
/// negative one is refused).
fn parse_duration(s: &str) -> Option<u64> {
    rstack_sys::duration::parse(s)
        .ok()
        .and_then(|n| u64::try_from(n).ok())
}

impl Ctx<'_> {
    /// Instructions that only change the config.
    pub(super) fn meta_step(&mut self, state: &mut State, inst: &Inst) -> Result<(), Error> {
        match &inst.kind {
            Kind::Arg(raw) => return self.arg(state, inst, raw),
            Kind::Env(raw) => self.env(state, inst, raw)?,
            Kind::Label(raw) => self.label(state, inst, raw)?,
            Kind::User(u) => {
                let u = self.expand(state, inst, u)?;
                state.config.config.user = Some(u);
            }
            Kind::Cmd(c) => {
                state.config.config.cmd = Some(state.command(c));
                state.cmd_set = true;
            }
            Kind::Entrypoint(c) => {
                state.config.config.entrypoint = Some(state.command(c));
                if !state.cmd_set {
                    state.config.config.cmd = None;
                }
            }
            Kind::Expose(ports) => self.expose(state, inst, ports)?,
            Kind::Volume(vols) => self.volume(state, inst, vols)?,
            Kind::Healthcheck { flags, test } => {
                let hc = self.healthcheck(inst, flags, test.as_ref())?;
                state.config.config.healthcheck = Some(hc);
            }
            Kind::Stopsignal(s) => {
                let s = self.expand(state, inst, s)?;
                state.config.config.stop_signal = Some(s);
            }
            Kind::Shell(v) => state.config.config.shell = Some(v.clone()),
            Kind::Onbuild(t) => state
                .config
                .config
                .on_build
                .get_or_insert_with(Vec::new)
                .push(t.clone()),
            Kind::Maintainer(m) => {
                state
                    .config
                    .other
                    .insert("author".into(), serde_json::Value::String(m.clone()));
            }
            Kind::From { .. } | Kind::Run { .. } | Kind::Copy { .. } | Kind::Workdir(_) => {
                unreachable!("not a config-only instruction")
            }
        }
        state.history(inst, true);
        Ok(())
    }

    /// ARG: declares build args in the stage (no history entry).
    fn arg(&mut self, state: &mut State, inst: &Inst, raw: &str) -> Result<(), Error> {
        let lookup = |k: &str| state.lookup(k);
        let pairs = words::pairs(raw, &lookup, self.escape, false)
            .map_err(|m| step_err(&self.file, inst, m))?;
        for (k, v) in pairs {
            self.used_args.insert(k.clone());
            let value = self
                .opts
                .build_args
                .get(&k)
                .cloned()
                .or(v)
                .or_else(|| self.global_args.get(&k).cloned().flatten());
            state.args.insert(k, value);
        }
        Ok(())
    }

    fn env(&self, state: &mut State, inst: &Inst, raw: &str) -> Result<(), Error> {
        let err = |m: String| step_err(&self.file, inst, m);
        let lookup = |k: &str| state.lookup(k);
        let pairs = words::pairs(raw, &lookup, self.escape, true).map_err(err)?;
        for (k, v) in pairs {
            let v = v.ok_or_else(|| err(format!("ENV {k} needs a value: ENV {k}=VALUE")))?;
            state.config.config.env_set(&k, &v);
        }
        Ok(())
    }

    fn label(&self, state: &mut State, inst: &Inst, raw: &str) -> Result<(), Error> {
        let err = |m: String| step_err(&self.file, inst, m);
        let lookup = |k: &str| state.lookup(k);
        let pairs = words::pairs(raw, &lookup, self.escape, false).map_err(err)?;
        let labels = state.config.config.labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in pairs {
            let v = v.ok_or_else(|| err(format!("LABEL {k} needs a value: LABEL {k}=VALUE")))?;
            labels.insert(k, v);
        }
        Ok(())
    }

    fn expose(&self, state: &mut State, inst: &Inst, ports: &[String]) -> Result<(), Error> {
        let lookup = |k: &str| state.lookup(k);
        let mut vals = Vec::new();
        for p in ports {
            let p =
                words::word(p, &lookup, self.escape).map_err(|m| step_err(&self.file, inst, m))?;
            vals.push(if p.contains('/') {
                p
            } else {
                format!("{p}/tcp")
            });
        }
        let map = state
            .config
            .config
            .exposed_ports
            .get_or_insert_with(BTreeMap::new);
        for p in vals {
            map.insert(p, serde_json::json!({}));
        }
        Ok(())
    }

    fn volume(&self, state: &mut State, inst: &Inst, vols: &[String]) -> Result<(), Error> {
        let err = |m: String| step_err(&self.file, inst, m);
        let lookup = |k: &str| state.lookup(k);
        let mut vals = Vec::new();
        for v in vols {
            let v = words::word(v, &lookup, self.escape).map_err(err)?;
            if v.is_empty() {
                return Err(err("VOLUME specified can not be an empty string".into()));
            }
            vals.push(v);
        }
        let map = state
            .config
            .config
            .volumes
            .get_or_insert_with(BTreeMap::new);
        for v in vals {
            map.insert(v, serde_json::json!({}));
        }
        Ok(())
    }

    /// HEALTHCHECK as Docker stores it (`NONE`, `CMD`, `CMD-SHELL`; times
    /// in nanoseconds).
    fn healthcheck(
        &self,
        inst: &Inst,
        flags: &[(String, String)],
        test: Option<&Cmd>,
    ) -> Result<Healthcheck, Error> {
        let err = |m: String| step_err(&self.file, inst, m);
        let mut hc = Healthcheck::default();
        match test {
            None => hc.test = vec!["NONE".into()],
            Some(Cmd::Exec(v)) => {
                hc.test = std::iter::once("CMD".to_owned())
                    .chain(v.iter().cloned())
                    .collect()
            }
            Some(Cmd::Shell(s)) => hc.test = vec!["CMD-SHELL".into(), s.clone()],
        }
        for (name, value) in flags {
            let dur = || {
                parse_duration(value)
                    .ok_or_else(|| err(format!("--{name}={value}: invalid duration")))
            };
            match name.as_str() {
                "interval" => hc.interval = dur()?,
                "timeout" => hc.timeout = dur()?,
                "start-period" => hc.start_period = dur()?,
                "start-interval" => hc.start_interval = dur()?,
                "retries" => {
                    hc.retries = value
                        .parse()
                        .map_err(|_| err(format!("--retries={value}: not a number")))?
                }
                _ => {}
            }
        }
        Ok(hc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(5_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("100ms"), Some(100_000_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("x"), None);
    }
}
