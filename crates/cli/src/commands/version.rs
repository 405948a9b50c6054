//! `rstack version`: like `docker compose version`.

use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Shows only rstack's version number
    #[arg(long)]
    short: bool,
}

pub fn run(_global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let version = env!("CARGO_PKG_VERSION");
    if args.short {
        println!("{version}");
    } else {
        println!("rstack version v{version}");
    }
    Ok(0)
}
