//! `rstack network rm`: removes networks (bridge, NAT rules, state).

use rstack_netns::Networks;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do not error if the network does not exist
    #[arg(short, long)]
    force: bool,
    /// Network names or IDs
    #[arg(required = true)]
    networks: Vec<String>,
}

pub fn run(nets: &Networks, args: Args) -> anyhow::Result<u8> {
    let mut failed = false;
    for name in &args.networks {
        match nets.remove(name) {
            Ok(()) => println!("{name}"),
            Err(rstack_netns::network::Error::State(rstack_netns::state::Error::NotFound {
                ..
            })) if args.force => {}
            Err(e) => {
                failed = true;
                eprintln!("Error: {e}");
                for c in rstack_sys::chain::causes(&e) {
                    eprintln!("  caused by: {c}");
                }
            }
        }
    }
    Ok(u8::from(failed))
}
