//! `rstack unpause [SERVICE...]`: thaw the services' paused containers.

use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Services to unpause
    pub services: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    super::pause::set(global, &args.services, false)
}
