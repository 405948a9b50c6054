//! `rstack logout`: forget the credentials `rstack login` stored.

use rstack_images::auth;

use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Registry server (default: Docker Hub)
    server: Option<String>,
}

pub fn run(_global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let server = args.server.unwrap_or_else(|| "docker.io".to_owned());
    match auth::remove(&server) {
        Ok(_) => println!("Removing login credentials for {server}"),
        Err(auth::Error::NotLoggedIn { .. }) => println!("Not logged in to {server}"),
        Err(e) => return Err(e.into()),
    }
    Ok(0)
}
