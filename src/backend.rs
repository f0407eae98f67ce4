//! Static backends: a named upstream address and the connection settings used to reach it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use pingora::upstreams::peer::HttpPeer;

use crate::config::{BackendConfig, ConfigError, LoadedConfig};

/// A backend ready for the request path: its address resolved and its peer template built.
#[derive(Debug)]
pub struct Backend {
    pub name: Arc<str>,
    pub address: SocketAddr,
    pub config: BackendConfig,
    peer: HttpPeer,
}

impl Backend {
    /// Resolves the backend's host once, here, at load: pingora's `HttpPeer::new` would resolve
    /// with blocking DNS (and panic on failure) if handed a name per request.
    pub fn build(
        config: &BackendConfig,
        at: &str,
        loaded: &LoadedConfig,
    ) -> Result<Backend, ConfigError> {
        let endpoint = &config.endpoint;
        let address = (endpoint.host.as_str(), endpoint.port)
            .to_socket_addrs()
            .map_err(|e| {
                loaded.error_at(
                    format!("{at}.static.host"),
                    format!("cannot resolve `{}`: {e}", endpoint.host),
                )
            })?
            .next()
            .ok_or_else(|| {
                loaded.error_at(
                    format!("{at}.static.host"),
                    format!("`{}` resolves to no address", endpoint.host),
                )
            })?;
        for (field, value) in [
            ("connect_timeout", config.connect_timeout),
            ("read_timeout", config.read_timeout),
            ("write_timeout", config.write_timeout),
        ] {
            if value.is_zero() {
                return Err(loaded.error_at(
                    format!("{at}.{field}"),
                    "must be greater than zero (a zero timeout would fail every request)",
                ));
            }
        }

        let mut peer = HttpPeer::new(address, false, String::new());
        // pingora leaves every timeout unset, which waits on a stuck backend forever.
        peer.options.connection_timeout = Some(config.connect_timeout);
        peer.options.read_timeout = Some(config.read_timeout);
        peer.options.write_timeout = Some(config.write_timeout);
        peer.options.idle_timeout = Some(config.idle_timeout);
        Ok(Backend {
            name: Arc::from(config.name.as_str()),
            address,
            config: config.clone(),
            peer,
        })
    }

    /// The peer to hand to pingora for one request.
    pub fn peer(&self) -> Box<HttpPeer> {
        Box::new(self.peer.clone())
    }
}
