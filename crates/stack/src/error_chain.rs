//! An error and its causes on one line, for messages that travel as text
//! (warnings, control-socket answers, the creator's replies): rstack-sys's
//! one formatter, re-exported where the stack's modules look for it.

pub(crate) use rstack_sys::chain::chain;
