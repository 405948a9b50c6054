//! Linux capabilities a container process keeps: Docker's default 14, then
//! `--cap-drop` and `--cap-add` (both accept `ALL`), or everything with
//! `--privileged`. A container can never hold a capability its creator's
//! bounding set lacks (the kernel refuses the capset), so the result is
//! checked against the caller's bounding set.

use std::collections::HashSet;
use std::str::FromStr;

use caps::Capability;

/// A capability request that cannot be honoured.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CapsError {
    #[error("unknown capability '{name}'")]
    Unknown { name: String },
    #[error(
        "capability {name} was asked for but rstack itself does not hold it (bounding set), so the container cannot get it"
    )]
    NotHeld { name: String },
}

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DOCKER_DEFAULT_CAPS: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

fn parse_cap(name: &str) -> Result<Capability, CapsError> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    Capability::from_str(&full).map_err(|_| CapsError::Unknown {
        name: name.to_owned(),
    })
}

/// The capability set for the container (bounding = effective = permitted).
///
/// `held` is the creator's bounding set: with `ALL`/`--privileged`, caps
/// outside it are silently left out (as Docker does on restricted hosts);
/// a cap named explicitly in `--cap-add` that is not held is an error.
pub fn capability_set(
    privileged: bool,
    cap_add: &[String],
    cap_drop: &[String],
    held: &HashSet<Capability>,
) -> Result<HashSet<Capability>, CapsError> {
    let all: HashSet<Capability> = caps::all().into_iter().collect();
    let is_all = |s: &String| s.trim().eq_ignore_ascii_case("ALL");
    let adds: Vec<Capability> = cap_add
        .iter()
        .filter(|s| !is_all(s))
        .map(|s| parse_cap(s))
        .collect::<Result<_, _>>()?;
    let drops: Vec<Capability> = cap_drop
        .iter()
        .filter(|s| !is_all(s))
        .map(|s| parse_cap(s))
        .collect::<Result<_, _>>()?;
    for cap in &adds {
        if !held.contains(cap) {
            return Err(CapsError::NotHeld {
                name: cap.to_string(),
            });
        }
    }
    if privileged {
        return Ok(all.intersection(held).copied().collect());
    }
    let mut set: HashSet<Capability> = DOCKER_DEFAULT_CAPS.into_iter().collect();
    if cap_drop.iter().any(is_all) {
        set.clear();
    }
    for cap in &drops {
        set.remove(cap);
    }
    if cap_add.iter().any(is_all) {
        set.extend(all.iter().copied());
    }
    set.extend(adds);
    Ok(set.intersection(held).copied().collect())
}

/// The caller's bounding set (what a container may be given at most).
pub fn caller_bounding_set() -> HashSet<Capability> {
    match caps::read(None, caps::CapSet::Bounding) {
        Ok(set) => set.into_iter().collect(),
        Err(err) => {
            tracing::warn!(%err, "cannot read the bounding capability set; assuming all");
            caps::all().into_iter().collect()
        }
    }
}

/// The capability bit mask, as `/proc/<pid>/status` shows it (`CapEff`).
pub fn mask(set: &HashSet<Capability>) -> u64 {
    set.iter().fold(0, |m, c| m | c.bitmask())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> HashSet<Capability> {
        caps::all().into_iter().collect()
    }

    #[test]
    fn docker_default_mask() {
        let set = capability_set(false, &[], &[], &all()).unwrap();
        assert_eq!(set.len(), 14);
        // `docker run --rm busybox grep CapEff /proc/self/status`
        assert_eq!(mask(&set), 0x00000000a80425fb);
    }

    #[test]
    fn add_and_drop() {
        let set = capability_set(
            false,
            &["net_admin".into(), "CAP_SYS_TIME".into()],
            &["chown".into()],
            &all(),
        )
        .unwrap();
        assert!(set.contains(&Capability::CAP_NET_ADMIN));
        assert!(set.contains(&Capability::CAP_SYS_TIME));
        assert!(!set.contains(&Capability::CAP_CHOWN));
        assert_eq!(set.len(), 15);
        let set = capability_set(false, &["kill".into()], &["ALL".into()], &all()).unwrap();
        assert_eq!(set.into_iter().collect::<Vec<_>>(), [Capability::CAP_KILL]);
        let set = capability_set(false, &["all".into()], &[], &all()).unwrap();
        assert_eq!(set, all());
        assert!(matches!(
            capability_set(false, &["bogus".into()], &[], &all()),
            Err(CapsError::Unknown { .. })
        ));
    }

    #[test]
    fn bounded_by_the_caller() {
        let mut held = all();
        held.remove(&Capability::CAP_SYS_RESOURCE);
        let set = capability_set(true, &[], &[], &held).unwrap();
        assert!(!set.contains(&Capability::CAP_SYS_RESOURCE));
        assert_eq!(set.len(), held.len());
        assert_eq!(
            capability_set(false, &["SYS_RESOURCE".into()], &[], &held),
            Err(CapsError::NotHeld {
                name: "CAP_SYS_RESOURCE".into()
            })
        );
    }
}
