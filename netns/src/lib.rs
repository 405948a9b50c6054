//! rstack-netns: container networking.
//!
//! Bridges, veth pairs, IPAM, NAT and published ports, and the embedded DNS
//! resolver. Knows nothing of Compose: it takes "network N with these
//! options" and "attach this container (a pinned netns path) to N with these
//! aliases and ports".

pub mod attach;
pub mod container;
pub mod dns;
pub mod fsutil;
pub mod netlink;
pub mod network;
pub mod nft;
pub mod pinned;
pub mod ports;
pub mod state;
pub mod subnet;

pub use attach::{AttachRequest, Attachment};
pub use container::{ContainerNetworkSpec, NetworkEndpoint, RESOLV_CONF};
pub use dns::{Resolver, Upstreams};
pub use network::{Config, CreateOptions, Networks};
pub use pinned::{create_pinned_netns, pin_netns_of_pid, remove_pinned_netns};
pub use ports::{PortMapping, PortSpec, Protocol};

/// The causes of an error, `: `-joined (for messages that fold several).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(c) = cur {
        parts.push(c.to_string());
        cur = c.source();
    }
    parts.join(": ")
}
