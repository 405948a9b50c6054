//! Random identifiers (container ids, netns names, veth suffixes) from the
//! kernel's CSPRNG (`getrandom(2)` through the getrandom crate). A failure is
//! an error, never a predictable id: two containers must not share one.

/// The kernel could not provide random bytes.
#[derive(Debug, thiserror::Error)]
#[error("cannot get random bytes from the kernel")]
pub struct Error(#[source] getrandom::Error);

/// `n` random bytes as `2 * n` lowercase hex digits.
pub fn random_hex(n: usize) -> Result<String, Error> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(Error)?;
    Ok(hex(&buf))
}

/// A 64-hex-digit id, Docker's container id shape.
pub fn random_id() -> Result<String, Error> {
    random_hex(32)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lowercase_hex_of_the_asked_length_and_differ() {
        let a = random_id().unwrap();
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, random_id().unwrap());
        assert_eq!(random_hex(3).unwrap().len(), 6);
        assert_eq!(random_hex(0).unwrap(), "");
    }

    #[test]
    fn hex_encoding() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }
}
