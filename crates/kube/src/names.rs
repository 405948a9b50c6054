//! Kubernetes names and quantities from Compose's.
//!
//! Compose names services `[a-zA-Z0-9][a-zA-Z0-9_.-]*` and projects
//! `[a-z0-9][a-z0-9_-]*`; Kubernetes wants DNS-1035 labels for Services
//! (`[a-z]([-a-z0-9]*[a-z0-9])?`, at most 63), DNS-1123 subdomains for most
//! other objects, and label values of `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
//! Its quantities are strings (`500m`, `64Mi`) and its probe times whole
//! seconds. Hand-rolled: each rule is a few lines of character mapping, no
//! crate offers Compose-to-Kubernetes naming.

/// The longest DNS label.
pub const LABEL_MAX: usize = 63;

/// A DNS-1035 label for `name`: lowercase, `_` and `.` (and anything else
/// outside `[a-z0-9-]`) become `-`, a leading digit gets an `s` before it,
/// at most `max` characters, no `-` at either end.
pub fn dns_label(name: &str, max: usize) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            _ => '-',
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let mut out = out.trim_start_matches('-').to_owned();
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert(0, 's');
    }
    out.truncate(max);
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "s".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// `base-suffix` as a DNS-1035 label of at most 63 characters: `base` is
/// shortened so the suffix always fits.
pub fn derived(base: &str, suffix: &str) -> String {
    let suffix = dns_label(suffix, LABEL_MAX);
    let room = LABEL_MAX.saturating_sub(suffix.len() + 1).max(1);
    format!("{}-{suffix}", dns_label(base, room))
}

/// A label value: characters outside `[-A-Za-z0-9_.]` become `-`, at most
/// 63, alphanumeric at both ends (may be empty).
pub fn label_value(value: &str) -> String {
    let mapped: String = value
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '-',
        })
        .collect();
    let mut s = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if s.len() > LABEL_MAX {
        s = s[..LABEL_MAX].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    }
    s.to_owned()
}

/// A ConfigMap or Secret key: `[-._a-zA-Z0-9]+`, other characters become `_`.
pub fn data_key(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .collect();
    if s.is_empty() || s == "." || s == ".." {
        format!("_{s}")
    } else {
        s
    }
}

/// Whether `name` can be an environment variable taken by `envFrom`
/// (Kubernetes accepts any printable ASCII but `=`; a C identifier is what
/// every shell and runtime agrees on, and what Compose users write).
pub fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

/// CPUs as a quantity: whole cores as `2`, else millicores (`500m`);
/// `None` for a value under one millicore.
pub fn cpu_quantity(cpus: f64) -> Option<String> {
    let milli = (cpus * 1000.0).round() as i64;
    if milli <= 0 {
        return None;
    }
    Some(if milli % 1000 == 0 {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    })
}

/// Bytes as a quantity in the largest binary unit that divides them
/// (`64Mi`, `1Gi`), else plain bytes.
pub fn memory_quantity(bytes: i64) -> String {
    for (unit, size) in [
        ("Ti", 1i64 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// Whole seconds of a Compose duration for a probe or grace period,
/// rounded up (Kubernetes counts in seconds, at least `min`); the second
/// value is true when that changed the duration.
pub fn seconds(nanos: i64, min: i64) -> (i64, bool) {
    let secs = (nanos.max(0) + 999_999_999) / 1_000_000_000;
    let out = secs.max(min);
    (out, out * 1_000_000_000 != nanos)
}

/// An IANA service name for a port (`[a-z0-9-]`, at most 15, a letter in
/// it, no `--`): `tcp-8080`, or the Compose port's own name when it fits.
pub fn port_name(name: Option<&str>, protocol: &str, port: u32) -> String {
    if let Some(n) = name {
        let ok = !n.is_empty()
            && n.len() <= 15
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && n.chars().any(|c| c.is_ascii_lowercase())
            && !n.starts_with('-')
            && !n.ends_with('-')
            && !n.contains("--");
        if ok {
            return n.to_owned();
        }
    }
    format!("{}-{port}", protocol.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert_eq!(dns_label("api", 63), "api");
        assert_eq!(dns_label("My_Service.v2", 63), "my-service-v2");
        assert_eq!(dns_label("9lives", 63), "s9lives");
        assert_eq!(dns_label("a_", 63), "a");
        assert_eq!(dns_label(&"x".repeat(80), 63).len(), 63);
        assert_eq!(dns_label("___", 63), "s");
        assert_eq!(dns_label("host-/srv/www", 63), "host-srv-www");
    }

    #[test]
    fn derived_names_keep_their_suffix() {
        assert_eq!(derived("api", "env"), "api-env");
        let long = derived(&"a".repeat(70), "published");
        assert!(long.len() <= 63 && long.ends_with("-published"), "{long}");
    }

    #[test]
    fn label_values() {
        assert_eq!(label_value("demo_app-"), "demo_app");
        assert_eq!(label_value("a b"), "a-b");
        assert_eq!(label_value(&"v".repeat(70)).len(), 63);
        assert_eq!(label_value("--"), "");
    }

    #[test]
    fn data_keys_and_env_names() {
        assert_eq!(data_key("db_password"), "db_password");
        assert_eq!(data_key("a/b c"), "a_b_c");
        assert_eq!(data_key(".."), "_..");
        assert!(is_env_name("DB_PASSWORD"));
        assert!(!is_env_name("1X"));
        assert!(!is_env_name("A B"));
    }

    #[test]
    fn quantities() {
        assert_eq!(cpu_quantity(0.5).as_deref(), Some("500m"));
        assert_eq!(cpu_quantity(2.0).as_deref(), Some("2"));
        assert_eq!(cpu_quantity(0.0), None);
        assert_eq!(memory_quantity(64 << 20), "64Mi");
        assert_eq!(memory_quantity(3 << 30), "3Gi");
        assert_eq!(memory_quantity(1000), "1000");
    }

    #[test]
    fn probe_seconds() {
        assert_eq!(seconds(2_000_000_000, 1), (2, false));
        assert_eq!(seconds(500_000_000, 1), (1, true));
        assert_eq!(seconds(0, 1), (1, true));
        assert_eq!(seconds(0, 0), (0, false));
        assert_eq!(seconds(1_500_000_000, 1), (2, true));
    }

    #[test]
    fn port_names() {
        assert_eq!(port_name(None, "TCP", 8080), "tcp-8080");
        assert_eq!(port_name(Some("web"), "tcp", 80), "web");
        assert_eq!(port_name(Some("Web_UI"), "tcp", 80), "tcp-80");
        assert_eq!(
            port_name(Some("a-very-long-port-name"), "udp", 53),
            "udp-53"
        );
    }
}
