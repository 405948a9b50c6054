//! An error and its causes as one line of text.
//!
//! Library errors here keep each cause in `source()` and out of their own
//! message, so a message alone says only the outermost step; wherever an
//! error becomes text (a reply over a socket, a log line, a teardown list)
//! the whole chain is wanted.

use std::error::Error;

/// `e`'s message and those of its causes, `: `-joined
/// (`cannot write /x: No space left on device (os error 28)`).
pub fn chain(e: &dyn Error) -> String {
    let mut s = e.to_string();
    for c in causes(e) {
        s.push_str(": ");
        s.push_str(&c.to_string());
    }
    s
}

/// The causes of `e` (its `source()`, that one's, ...), without `e` itself.
pub fn causes<'a>(e: &'a dyn Error) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(e.source(), |&c| c.source())
}

/// Only the causes of `e`, `: `-joined (for a message that already names
/// the outer step itself); empty when `e` has none.
pub fn causes_text(e: &dyn Error) -> String {
    causes(e)
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("cannot save {0}")]
        Save(String, #[source] Middle),
        #[error("plain")]
        Plain,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write")]
    struct Middle(#[source] std::io::Error);

    fn sample() -> Outer {
        Outer::Save("/x".into(), Middle(std::io::Error::other("disk full")))
    }

    #[test]
    fn joins_message_and_causes() {
        assert_eq!(chain(&sample()), "cannot save /x: cannot write: disk full");
        assert_eq!(chain(&Outer::Plain), "plain");
    }

    #[test]
    fn causes_skip_the_error_itself() {
        let e = sample();
        let v: Vec<String> = causes(&e).map(|c| c.to_string()).collect();
        assert_eq!(v, ["cannot write", "disk full"]);
        assert_eq!(causes_text(&e), "cannot write: disk full");
        assert_eq!(causes_text(&Outer::Plain), "");
    }
}
