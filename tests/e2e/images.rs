//! `rstack pull / images / rmi / image inspect|save|load / login / logout`
//! against the local registry and its fixtures, as a user would run them.

use libtest_mimic::Trial;

pub fn tests() -> Vec<Trial> {
    Vec::new()
}
