//! rstack-netns: container networking.
//!
//! Bridges, veth pairs, IPAM, NAT and published ports, and the embedded DNS
//! resolver. Knows nothing of Compose: it takes "network N with these
//! options" and "attach this container (a pinned netns path) to N with these
//! aliases and ports".
//!
//! How a container runner (`rstack container run`, the stack supervisor)
//! uses it:
//!
//! ```no_run
//! use rstack_netns::*;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let nets = Networks::new(Config::new("/run/rstack"));
//! let id = "0123abcd"; // the container id
//! // 1. a pinned, empty netns (lo up) the runtime joins by path
//! let netns = nets.paths().netns_dir().join(id);
//! create_pinned_netns(&netns)?;
//! // 2. attach it: veth, address, default route, DNAT for the ports
//! let attachments = nets.connect_container(&ContainerNetworkSpec {
//!     container_id: id.into(),
//!     name: "proj-web-1".into(),
//!     hostname: Some("0123abcd".into()),
//!     netns: netns.clone(),
//!     networks: vec![NetworkEndpoint {
//!         network: "proj_default".into(),
//!         aliases: vec!["web".into()],
//!         ..Default::default()
//!     }],
//!     ports: vec!["8080:80".parse()?],
//! })?;
//! // 3. the container: joins `netns`, resolv.conf = RESOLV_CONF, /etc/hosts
//! //    with attachments[0].ipv4; then, in a tokio runtime, the resolver:
//! let rt = tokio::runtime::Runtime::new()?;
//! let _guard = rt.enter();
//! let resolver = Resolver::new(&nets.paths().run_dir, Upstreams::from_host());
//! let dns = resolver.serve(id, &netns)?;
//! // ... the container runs; keep `attachments` (port reservations) and `dns` ...
//! // 4. on exit (idempotent, also for crash clean-up):
//! rt.block_on(dns.stop());
//! nets.disconnect_container(id)?;
//! remove_pinned_netns(&netns)?;
//! drop(attachments);
//! # Ok(()) }
//! ```

pub mod attach;
pub mod conntrack;
pub mod container;
pub mod dns;
pub mod firewall;
pub mod fsutil;
pub mod netlink;
pub mod network;
pub mod nft;
pub mod pinned;
pub mod ports;
pub mod sandbox;
pub mod state;
pub mod subnet;

pub use attach::{AttachRequest, Attachment};
pub use container::{ContainerNetworkSpec, NetworkEndpoint, RESOLV_CONF};
pub use dns::{Resolver, Upstreams};
pub use network::{Config, CreateOptions, Networks};
pub use pinned::{create_pinned_netns, pin_netns_of_pid, remove_pinned_netns};
pub use ports::{PortMapping, PortSpec, Protocol};
pub use sandbox::Sandbox;
pub use state::Link;

/// The causes of an error, `: `-joined (for messages that fold several).
pub(crate) use rstack_sys::chain::causes_text as error_chain;
