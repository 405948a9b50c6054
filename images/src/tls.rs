//! The TLS crypto provider of every registry client: rustls with *ring*.
//! reqwest's and oci-client's default provider is aws-lc-rs, which adds
//! about 2 MB to the binary (the edge target is a small one); with the
//! `*-no-provider` features they use the process-wide default installed
//! here, once, before any client is built.

use std::sync::Once;

/// Installs *ring* as the process's rustls provider (idempotent; a
/// provider installed earlier by someone else is kept).
pub(crate) fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err only when a provider is already installed: that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn clients_build_with_the_provider() {
        super::init();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        reqwest::Client::builder()
            .build()
            .expect("a TLS-capable reqwest client");
        let _ = oci_client::Client::new(oci_client::client::ClientConfig::default());
    }
}
