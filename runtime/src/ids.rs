//! Container ids and names: what a valid one looks like, and new random ids.

use crate::error::ContainerError;

/// A new container id (64 hex digits); an error when the kernel has no
/// random bytes to give, never a predictable id.
pub(crate) fn random_id() -> Result<String, ContainerError> {
    Ok(rstack_sys::random::random_id()?)
}

/// A container id as [`random_id`] makes them: 64 lowercase hex digits.
pub(crate) fn valid_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Docker's container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids() {
        assert!(valid_name("web-1"));
        assert!(valid_name("a.b_c"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(""));
        let id = random_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(valid_id(&id));
        assert!(!valid_id(&id[..63]));
    }
}
