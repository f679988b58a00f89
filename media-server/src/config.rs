//! Media plane configuration.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

/// Where the SFU listens and what it tells peers to send to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// IP the UDP socket binds to. `None`: the advertised IP.
    pub bind_ip: Option<IpAddr>,
    /// UDP port for all participants; 0 picks a free one.
    pub port: u16,
    /// IP put in the host candidate. `None`: the first non-loopback IPv4 of this
    /// machine (reachable from a browser on the same machine or LAN), else 127.0.0.1.
    pub advertise_ip: Option<IpAddr>,
    /// UDP port put in the host candidate. `None`: the bound port. Set it when a NAT
    /// or load balancer forwards another public port to ours.
    pub advertise_port: Option<u16>,
    /// ICE-TCP: also accept media over TCP (RFC 4571 framing), on the same port
    /// number as UDP (with `port = 0`, any free one if that is taken), for networks
    /// that block UDP. Its candidate advertises
    /// `advertise_ip` and the bound TCP port.
    pub ice_tcp: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            bind_ip: None,
            port: 50000,
            advertise_ip: None,
            advertise_port: None,
            ice_tcp: true,
        }
    }
}

impl MediaConfig {
    /// The address peers send media to.
    pub fn resolve_advertised_ip(&self) -> IpAddr {
        self.advertise_ip.unwrap_or_else(first_lan_ipv4)
    }

    /// The socket address to bind.
    pub fn bind_addr(&self) -> SocketAddr {
        let ip = self.bind_ip.unwrap_or_else(|| self.resolve_advertised_ip());
        SocketAddr::new(ip, self.port)
    }
}

/// First non-loopback IPv4 address of this host; 127.0.0.1 when there is none
/// (a loopback-only network namespace, as the tests use).
fn first_lan_ipv4() -> IpAddr {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|iface| !iface.is_loopback())
        .map(|iface| iface.ip())
        .find(IpAddr::is_ipv4)
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}
