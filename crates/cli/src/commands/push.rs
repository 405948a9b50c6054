//! `rstack image push NAME[:TAG]` (and `rstack push`): like `docker push`:
//! one line per blob, then the digest line.

use rstack_images::{PushEvent, PushProgress};

use crate::global::GlobalOpts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// Image to push: NAME[:TAG]
    image: String,
}

struct Lines;

impl PushProgress for Lines {
    fn blob(&self, id: &str, event: PushEvent) {
        match event {
            PushEvent::AlreadyExists => println!("{id}: Layer already exists"),
            PushEvent::Pushing { .. } => println!("{id}: Pushing"),
            PushEvent::Pushed => println!("{id}: Pushed"),
        }
    }
}

struct Silent;
impl PushProgress for Silent {}

pub fn run(global: &GlobalOpts, args: Args) -> anyhow::Result<u8> {
    let store = global.store()?;
    let reference = rstack_images::Reference::parse(&args.image)?;
    if !args.quiet {
        println!("The push refers to repository [{}]", reference.name());
    }
    let rt = crate::global::tokio_runtime()?;
    let progress: &dyn PushProgress = if args.quiet { &Silent } else { &Lines };
    let pushed = rt.block_on(store.push(&args.image, progress))?;
    let tag = reference.tag().unwrap_or("latest");
    if args.quiet {
        println!("{}", pushed.reference);
    } else {
        println!("{tag}: digest: {} size: {}", pushed.digest, pushed.size);
    }
    Ok(0)
}
