//! `rstack rmi` (and `rstack image rm`): untag and remove images like
//! `docker rmi`; layers and blobs no other image uses are deleted too.

use rstack_images::Store;

use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove the image even when it has several tags
    #[arg(short, long)]
    pub force: bool,
    /// Images (name, name:tag, name@digest, or image id)
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let store = Store::open(&global.root)?;
    let mut status = 0;
    for image in &args.images {
        match store.remove(image, args.force) {
            Ok(removed) => {
                for name in &removed.untagged {
                    println!("Untagged: {name}");
                }
                for id in removed.deleted_images.iter().chain(&removed.deleted_layers) {
                    println!("Deleted: {id}");
                }
            }
            Err(err) => {
                eprintln!("Error: {err}");
                status = 1;
            }
        }
    }
    Ok(status)
}
