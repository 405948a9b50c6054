//! An error and its causes on one line, for messages that travel as text
//! (warnings, control-socket answers, the creator's replies). A leaf: every
//! module may use it without pulling in another's dependencies.

/// An error and its causes, `: `-joined.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
