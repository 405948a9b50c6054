//! One container on several networks at once: what `container run` and the
//! stack supervisor call.
//!
//! Networks are attached in the given order; the first non-internal one
//! gets the default route (later ones only add their subnet). Published
//! ports are DNATed to the address on the first non-internal network, as
//! Docker does. If any attach fails, the ones done are detached again.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::attach::{AttachRequest, Attachment, Error};
use crate::network::Networks;
use crate::ports::PortSpec;

/// The resolv.conf every attached container gets (the embedded resolver;
/// `ndots:0` like Docker, so single-label names are not searched).
pub const RESOLV_CONF: &str = "nameserver 127.0.0.11\noptions ndots:0\n";

/// One network of a container.
#[derive(Debug, Clone, Default)]
pub struct NetworkEndpoint {
    pub network: String,
    /// Aliases on this network (the Compose service name goes here).
    pub aliases: Vec<String>,
    pub ipv4_address: Option<Ipv4Addr>,
    pub mac_address: Option<String>,
    /// Names only this container resolves (`links:`).
    pub links: Vec<crate::state::Link>,
}

/// A container's whole network set-up.
#[derive(Debug, Clone, Default)]
pub struct ContainerNetworkSpec {
    pub container_id: String,
    pub name: String,
    pub hostname: Option<String>,
    /// Pinned network namespace (see `create_pinned_netns`).
    pub netns: PathBuf,
    /// In order; the first non-internal one carries the default route and
    /// the published ports.
    pub networks: Vec<NetworkEndpoint>,
    pub ports: Vec<PortSpec>,
}

impl Networks {
    /// Attaches the container to all its networks (see module docs). Keep
    /// the returned attachments while the container runs (they hold the
    /// published ports); call `disconnect_container` when it exits.
    pub fn connect_container(&self, spec: &ContainerNetworkSpec) -> Result<Vec<Attachment>, Error> {
        let port_net = spec
            .networks
            .iter()
            .position(|n| self.inspect(&n.network).is_ok_and(|s| !s.internal));
        let mut done: Vec<Attachment> = Vec::new();
        for (i, ep) in spec.networks.iter().enumerate() {
            let req = AttachRequest {
                network: ep.network.clone(),
                container_id: spec.container_id.clone(),
                name: spec.name.clone(),
                hostname: spec.hostname.clone(),
                aliases: ep.aliases.clone(),
                netns: spec.netns.clone(),
                ipv4_address: ep.ipv4_address,
                mac_address: ep.mac_address.clone(),
                links: ep.links.clone(),
                ifname: None,
                ports: if Some(i) == port_net {
                    spec.ports.clone()
                } else {
                    Vec::new()
                },
            };
            match self.attach(&req) {
                Ok(a) => done.push(a),
                Err(e) => {
                    for a in done.iter().rev() {
                        if let Err(undo) = self.detach(&a.network, &a.container_id) {
                            tracing::warn!(network = %a.network, error = %undo, "undo attach failed");
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(done)
    }

    /// Detaches the container from every network (best effort, idempotent).
    pub fn disconnect_container(&self, container_id: &str) -> Result<(), Error> {
        self.detach_all(container_id)
    }
}
