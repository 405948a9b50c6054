//! Short-syntax strings of service volumes (`./data:/data:ro`) and ports
//! (`127.0.0.1:8080-8081:80-81/udp`), parsed into their long forms the way
//! compose-go (`format.ParseVolume`) and docker's go-connections
//! (`nat.ParsePortSpec`) parse them.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid empty volume spec")]
    EmptyVolume,
    #[error("invalid spec: {spec}: {reason}")]
    Volume { spec: String, reason: &'static str },
    #[error("No port specified: {spec}<empty>")]
    NoPort { spec: String },
    #[error("Invalid containerPort: {port}")]
    ContainerPort { port: String },
    #[error("Invalid hostPort: {port}")]
    HostPort { port: String },
    #[error("Invalid proto: {proto}")]
    Proto { proto: String },
    #[error("Invalid ip address: {ip}")]
    Ip { ip: String },
    #[error("Invalid ranges specified for container and host Ports: {container} and {host}")]
    Ranges { container: String, host: String },
}

/// A service volume in long syntax, as the short syntax gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    pub target: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOpts>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub propagation: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_host_path: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selinux: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeOpts {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nocopy: bool,
}

const PROPAGATIONS: [&str; 6] = [
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

fn is_windows_drive(buffer: &[char], c: char) -> bool {
    c == ':' && buffer.len() == 1 && buffer[0].is_alphabetic()
}

/// Whether a volume source is a host path (bind) rather than a volume name.
pub fn is_file_path(source: &str) -> bool {
    let mut chars = source.chars();
    match chars.next() {
        None => false,
        Some('.' | '/' | '~') => true,
        Some(_) if source.starts_with("\\\\") => true,
        Some(first) => chars.next().is_some_and(|n| is_windows_drive(&[first], n)),
    }
}

/// Parses `[source:]target[:options]`.
pub fn parse_volume(spec: &str) -> Result<VolumeSpec, Error> {
    let mut v = VolumeSpec::default();
    match spec.chars().count() {
        0 => return Err(Error::EmptyVolume),
        1 | 2 => {
            v.target = spec.to_string();
            v.kind = "volume".into();
            return Ok(v);
        }
        _ => {}
    }
    let mut buffer: Vec<char> = Vec::new();
    let mut depth = 0usize;
    let chars: Vec<char> = spec.chars().collect();
    let mut i = 0;
    while i <= chars.len() {
        let c = chars.get(i).copied();
        i += 1;
        match c {
            Some('$') if chars.get(i) == Some(&'{') => {
                depth += 1;
                buffer.push('$');
                buffer.push('{');
                i += 1;
            }
            Some('{') if depth > 0 => {
                depth += 1;
                buffer.push('{');
            }
            Some('}') if depth > 0 => {
                depth -= 1;
                buffer.push('}');
            }
            Some(':') if depth > 0 => buffer.push(':'),
            Some(':') if is_windows_drive(&buffer, ':') => buffer.push(':'),
            Some(':') | None => {
                if let Err(reason) = populate(c.is_none(), &buffer, &mut v) {
                    return Err(Error::Volume {
                        spec: spec.to_string(),
                        reason,
                    });
                }
                buffer.clear();
            }
            Some(c) => buffer.push(c),
        }
    }
    if is_file_path(&v.source) {
        v.kind = "bind".into();
        v.bind
            .get_or_insert_with(BindSpec::default)
            .create_host_path = true;
    } else {
        v.kind = "volume".into();
        v.volume.get_or_insert_with(VolumeOpts::default);
    }
    Ok(v)
}

fn populate(end: bool, buffer: &[char], v: &mut VolumeSpec) -> Result<(), &'static str> {
    let s: String = buffer.iter().collect();
    if buffer.is_empty() {
        return Err("empty section between colons");
    }
    if v.source.is_empty() && end {
        v.target = s;
        return Ok(());
    }
    if v.source.is_empty() {
        v.source = s;
        return Ok(());
    }
    if v.target.is_empty() {
        v.target = s;
        return Ok(());
    }
    if !end {
        return Err("too many colons");
    }
    for option in s.split(',') {
        match option {
            "ro" => v.read_only = true,
            "rw" => v.read_only = false,
            "nocopy" => v.volume = Some(VolumeOpts { nocopy: true }),
            o if PROPAGATIONS.contains(&o) => {
                v.bind.get_or_insert_with(BindSpec::default).propagation = o.to_string();
            }
            o @ ("z" | "Z") => {
                v.bind.get_or_insert_with(BindSpec::default).selinux = o.to_string();
            }
            _ => {}
        }
    }
    Ok(())
}

/// A published port in long syntax.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub mode: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
    pub target: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub published: String,
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

fn port_range(s: &str) -> Option<(u32, u32)> {
    let one = |p: &str| {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse::<u16>().ok().map(u32::from)
    };
    match s.split_once('-') {
        None => one(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            (b >= a).then_some((a, b))
        }
    }
}

/// Parses `[[ip:]published:]target[/protocol]`; a range gives several ports.
pub fn parse_port(spec: &str) -> Result<Vec<PortSpec>, Error> {
    let parts: Vec<&str> = spec.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    let (ip, host) = match n {
        1 => (String::new(), ""),
        2 => (String::new(), parts[0]),
        3 => (parts[0].to_string(), parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2]),
    };
    let (container, proto) = match container.split_once('/') {
        Some((p, proto)) => (p, proto.to_string()),
        None => (container, "tcp".to_string()),
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']').to_string();
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        return Err(Error::Ip { ip });
    }
    if container.is_empty() {
        return Err(Error::NoPort {
            spec: spec.to_string(),
        });
    }
    let (start, end) = port_range(container).ok_or_else(|| Error::ContainerPort {
        port: container.to_string(),
    })?;
    let (hstart, hend) = if host.is_empty() {
        (0, 0)
    } else {
        port_range(host).ok_or_else(|| Error::HostPort {
            port: host.to_string(),
        })?
    };
    if !host.is_empty() && end - start != hend - hstart && end != start {
        return Err(Error::Ranges {
            container: container.to_string(),
            host: host.to_string(),
        });
    }
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(Error::Proto { proto });
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let published = if host.is_empty() {
            String::new()
        } else if start == end && hstart != hend {
            format!("{hstart}-{hend}")
        } else {
            (hstart + i).to_string()
        };
        out.push(PortSpec {
            mode: "ingress".into(),
            host_ip: ip.clone(),
            target: start + i,
            published,
            protocol: proto.clone(),
            ..PortSpec::default()
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes() {
        let v = parse_volume("./data:/data:ro").unwrap();
        assert_eq!((v.kind.as_str(), v.read_only), ("bind", true));
        let v = parse_volume("db:/var/lib/db").unwrap();
        assert_eq!(v.kind, "volume");
        assert!(parse_volume("/a:/b:ro:x").is_err());
    }

    #[test]
    fn ports() {
        let p = parse_port("127.0.0.1:8080-8081:80-81/udp").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[1].target, p[1].published.as_str()), (81, "8081"));
        assert_eq!(p[0].host_ip, "127.0.0.1");
        assert!(parse_port("80:90:100:x").is_err());
    }
}
