//! A container's network sandbox: its pinned network namespace, its
//! endpoints on bridge networks (veth, address, published ports) and the
//! embedded DNS server inside it — the one way every rstack container gets
//! "networks with DNS": the stack's containers (single `run -d` ones
//! included) and an attached `container run`.
//!
//! [`Sandbox::open`] makes it in that order and undoes what it made when a
//! step fails; [`Sandbox::teardown`] (or dropping it) removes it: DNS
//! stops, the endpoints go, the namespace is unpinned. A long-lived owner
//! that tears down by its records instead (the stack's supervisor, which
//! may be replaced while the container runs) takes the parts with
//! [`Sandbox::into_parts`].

use std::path::{Path, PathBuf};

use crate::container::ContainerNetworkSpec;
use crate::dns::ServeHandle;
use crate::{Attachment, Networks, Resolver};

/// The step of [`Sandbox::open`] that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create the network namespace {}", path.display())]
    Netns {
        path: PathBuf,
        #[source]
        source: crate::pinned::Error,
    },
    #[error("cannot attach the container to its networks")]
    Attach(#[source] crate::attach::Error),
    #[error("cannot start the embedded DNS server")]
    Dns(#[source] crate::dns::server::Error),
}

/// What [`Sandbox::open`] made; torn down when dropped.
#[derive(Debug)]
pub struct Sandbox {
    nets: Networks,
    container_id: String,
    netns: PathBuf,
    attachments: Vec<Attachment>,
    dns: Option<ServeHandle>,
    done: bool,
}

impl Sandbox {
    /// Pins `spec.netns`, attaches it to `spec.networks` (publishing
    /// `spec.ports`) and, with a `resolver`, serves DNS in it (which needs
    /// the caller inside a tokio runtime). Nothing is left when it fails.
    pub fn open(
        nets: &Networks,
        spec: &ContainerNetworkSpec,
        resolver: Option<&Resolver>,
    ) -> Result<Sandbox, Error> {
        crate::create_pinned_netns(&spec.netns).map_err(|source| Error::Netns {
            path: spec.netns.clone(),
            source,
        })?;
        let mut me = Sandbox {
            nets: nets.clone(),
            container_id: spec.container_id.clone(),
            netns: spec.netns.clone(),
            attachments: Vec::new(),
            dns: None,
            done: false,
        };
        // from here on, dropping `me` undoes what was made
        me.attachments = nets.connect_container(spec).map_err(Error::Attach)?;
        if let Some(r) = resolver {
            me.dns = Some(
                r.serve(&spec.container_id, &spec.netns)
                    .map_err(Error::Dns)?,
            );
        }
        Ok(me)
    }

    /// The container's endpoints (addresses, published ports).
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    /// The pinned namespace.
    pub fn netns(&self) -> &Path {
        &self.netns
    }

    /// Keeps everything made and hands over what must live as long as the
    /// container: the port reservations and the DNS server.
    pub fn into_parts(mut self) -> (Vec<Attachment>, Option<ServeHandle>) {
        self.done = true;
        (std::mem::take(&mut self.attachments), self.dns.take())
    }

    /// Stops DNS (its tasks aborted), detaches from every network and
    /// unpins the namespace; every step runs, the failures are returned.
    pub fn teardown(mut self) -> Vec<String> {
        self.undo()
    }

    fn undo(&mut self) -> Vec<String> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        drop(self.dns.take());
        let mut errors = Vec::new();
        if let Err(e) = self.nets.disconnect_container(&self.container_id) {
            errors.push(format!("detach {}: {e}", self.container_id));
        }
        if let Err(e) = crate::remove_pinned_netns(&self.netns) {
            errors.push(format!("remove {}: {e}", self.netns.display()));
        }
        // the port reservations go last, once no rule points at them
        self.attachments.clear();
        errors
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for e in self.undo() {
            tracing::warn!(error = %e, "tearing down a network sandbox");
        }
    }
}
