//! rstack-netns: container networking.
//!
//! Bridges, veth pairs, IPAM, NAT and published ports, and the embedded DNS
//! resolver. Knows nothing of Compose.
