//! Who a request comes from (the TCP peer, or the client a trusted proxy names) and
//! what every request may use: the anonymous allowance per client and the deadline.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use ipnet::IpNet;

use super::ratelimit::RateLimiter;
use crate::config::ServerConfig;

#[derive(Debug)]
pub struct HttpGuard {
    trusted_proxies: Vec<IpNet>,
    anonymous: RateLimiter,
    timeout: Duration,
}

impl HttpGuard {
    pub fn new(config: &ServerConfig) -> Self {
        Self {
            trusted_proxies: config.trusted_proxies.clone(),
            anonymous: RateLimiter::new(
                config.anonymous_requests_per_minute,
                Duration::from_secs(60),
            ),
            timeout: Duration::from_secs(config.request_timeout_secs),
        }
    }

    /// Counts one request of `client` that needs no sign-in; `false` past its allowance.
    pub fn allow_anonymous(&self, client: &str) -> bool {
        self.anonymous.allow(client, Instant::now())
    }

    /// How long a request may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The key a client's allowance is counted under: its address, or for IPv6 its
    /// /64 (one subscriber holds a whole /64; each address of it is no new client).
    pub fn limit_key(ip: IpAddr) -> String {
        match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the TCP peer, unless the peer is a trusted proxy; then
    /// the nearest address in `X-Forwarded-For` that is not one (each proxy appends
    /// the address it got the request from, so only the trusted tail is believed).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        // An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
        let peer = peer.to_canonical();
        if !self.trusted(peer) {
            return peer;
        }
        let mut client = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>() else {
                // Garbage from outside: believe no further.
                return client;
            };
            client = ip.to_canonical();
            if !self.trusted(ip) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn guard_with(proxies: &[&str]) -> HttpGuard {
        HttpGuard::new(&ServerConfig {
            trusted_proxies: proxies.iter().map(|p| p.parse().expect("net")).collect(),
            ..ServerConfig::default()
        })
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).expect("value"));
        }
        headers
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let none = guard_with(&[]);
        let spoofed = forwarded(&["1.2.3.4"]);
        assert_eq!(
            none.client_ip(ip("203.0.113.9"), &spoofed),
            ip("203.0.113.9")
        );

        let lb = guard_with(&["10.0.0.0/8"]);
        assert_eq!(
            lb.client_ip(ip("10.0.0.2"), &forwarded(&["198.51.100.7"])),
            ip("198.51.100.7")
        );
        // What the client wrote itself comes first; only the proxies' tail is believed.
        let chain = forwarded(&["1.2.3.4, 198.51.100.7, 10.0.0.5"]);
        assert_eq!(lb.client_ip(ip("10.0.0.2"), &chain), ip("198.51.100.7"));
        assert_eq!(
            lb.client_ip(ip("10.0.0.2"), &forwarded(&["1.2.3.4", "198.51.100.7"])),
            ip("198.51.100.7"),
            "several headers read as one list"
        );
        assert_eq!(
            lb.client_ip(ip("10.0.0.2"), &forwarded(&["garbage"])),
            ip("10.0.0.2")
        );
        assert_eq!(
            lb.client_ip(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
        assert_eq!(
            lb.client_ip(ip("203.0.113.9"), &chain),
            ip("203.0.113.9"),
            "from outside the proxies, the header is ignored"
        );
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64_and_a_mapped_ipv4_as_ipv4() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(HttpGuard::limit_key(ip("203.0.113.9")), "203.0.113.9");
        assert_eq!(
            HttpGuard::limit_key(ip("2001:db8:1:2:aaaa::1")),
            HttpGuard::limit_key(ip("2001:db8:1:2:bbbb::2")),
        );
        assert_ne!(
            HttpGuard::limit_key(ip("2001:db8:1:2::1")),
            HttpGuard::limit_key(ip("2001:db8:1:3::1")),
        );
        let lb = guard_with(&["10.0.0.0/8"]);
        assert_eq!(
            lb.client_ip(ip("::ffff:10.0.0.2"), &forwarded(&["198.51.100.7"])),
            ip("198.51.100.7")
        );
    }
}
