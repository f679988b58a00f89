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
    /// The VP8 bitstream version the beauty pipeline's encoder writes.
    pub beauty_vp8: Vp8Version,
    /// Threads of each beauty pipeline's VP8 encoder. One: with two, libvpx's row
    /// threads spin-wait on each other, which on a busy machine costs more CPU than
    /// it saves latency (BENCHMARKS.md, load and soak).
    pub beauty_vp8_threads: u8,
    /// SO_RCVBUF and SO_SNDBUF of the media UDP socket, in bytes: what arrives while
    /// the driver's thread is busy waits there instead of being dropped by the kernel
    /// (the system default, ≈ 208 KiB, is a few milliseconds of a busy node's traffic).
    /// The kernel caps it at `net.core.rmem_max`/`wmem_max` (a warning says so); 0
    /// keeps the system's defaults.
    pub socket_buffer_bytes: usize,
    /// Send runs of same-sized datagrams to one peer (a video frame's packets) with
    /// one system call (UDP GSO), where the kernel supports it. `false` sends every
    /// datagram on its own.
    pub udp_gso: bool,
}

/// How the beauty pipeline's VP8 encoder runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Encoding {
    pub version: Vp8Version,
    pub threads: u8,
}

impl Default for Vp8Encoding {
    fn default() -> Self {
        Self {
            version: Vp8Version::default(),
            threads: 1,
        }
    }
}

/// VP8 bitstream versions (RFC 6386 §9.1) the beauty pipeline can write. Decoders are
/// meant to take all of them (libvpx and FFmpeg do; VA-API names its VP8 profile
/// "Version0_3"), but browsers' encoders only ever send version 0, so a phone's
/// hardware decoder may never have met another: version 0 is the default, version 1
/// an opt-in for operators who know their customers' devices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vp8Version {
    /// Version 0: six-tap prediction filters and the normal loop filter.
    #[default]
    Normal,
    /// Version 1: bilinear prediction and the simple loop filter, ≈ 20 % less encoder
    /// CPU at the same quality on a face (BENCHMARKS.md).
    Simple,
}

impl Vp8Version {
    /// The number in the frame tag (and libvpx's `g_profile`).
    pub fn number(self) -> u8 {
        match self {
            Vp8Version::Normal => 0,
            Vp8Version::Simple => 1,
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            bind_ip: None,
            port: 50000,
            advertise_ip: None,
            advertise_port: None,
            ice_tcp: true,
            beauty_vp8: Vp8Version::default(),
            beauty_vp8_threads: 1,
            socket_buffer_bytes: crate::udp::DEFAULT_SOCKET_BUFFER_BYTES,
            udp_gso: true,
        }
    }
}

impl MediaConfig {
    /// How the media UDP socket is set up.
    pub fn socket_options(&self) -> crate::udp::SocketOptions {
        crate::udp::SocketOptions {
            buffer_bytes: self.socket_buffer_bytes,
            gso: self.udp_gso,
        }
    }

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

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde::de::value::{Error, MapDeserializer};

    use super::*;

    #[test]
    fn the_socket_settings_default_and_can_be_set_alone() {
        let defaults = MediaConfig::default().socket_options();
        assert_eq!(defaults.buffer_bytes, 4 * 1024 * 1024);
        assert!(defaults.gso);
        // A file or environment that names only `udp_gso` keeps every other default.
        let map = MapDeserializer::<_, Error>::new(std::iter::once(("udp_gso", false)));
        let config = MediaConfig::deserialize(map).expect("valid");
        assert!(!config.udp_gso);
        assert_eq!(config.socket_buffer_bytes, defaults.buffer_bytes);
        assert_eq!(config.port, MediaConfig::default().port);
    }
}
