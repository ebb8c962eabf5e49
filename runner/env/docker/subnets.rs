//! Networks past Docker's default address pools.
//!
//! Each environment has a bridge network of its own, and an engine left at its defaults hands out
//! about 30 of them (15 /16s and 16 /20s). A workshop of 50 seats needs 50. When the engine says
//! it has no pool left, the network is made again with an explicit /24 from the runner's own
//! range, [`RANGE`]: one that no Docker network uses and no route of this host reaches.

use std::net::Ipv4Addr;

use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};

use super::client::{DockerClient, DockerError};

/// The runner's own range for networks past the engine's pools: 256 networks of 256 addresses.
pub const RANGE: Net = Net {
    base: u32::from_be_bytes([10, 201, 0, 0]),
    prefix: 16,
};
/// Each network's size within [`RANGE`].
const PREFIX: u8 = 24;
/// How many subnets are tried when other runs take the chosen ones at the same moment.
const ATTEMPTS: usize = 12;

/// An IPv4 network: its first address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    base: u32,
    prefix: u8,
}

impl Net {
    /// `a.b.c.d/n`; `None` for anything else (an IPv6 subnet, say).
    pub fn parse(text: &str) -> Option<Net> {
        let (addr, prefix) = text.split_once('/')?;
        let addr: Ipv4Addr = addr.trim().parse().ok()?;
        let prefix: u8 = prefix.trim().parse().ok()?;
        (prefix <= 32).then(|| Net::new(u32::from(addr), prefix))
    }

    fn new(addr: u32, prefix: u8) -> Net {
        Net {
            base: addr & Net::mask(prefix),
            prefix,
        }
    }

    fn mask(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        }
    }

    fn overlaps(&self, other: &Net) -> bool {
        let shorter = Net::mask(self.prefix.min(other.prefix));
        self.base & shorter == other.base & shorter
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

/// Creates the network as asked; when the engine has no address pool left, creates it with a free
/// /24 of [`RANGE`] instead. Returns the subnet chosen that way, if one was.
pub async fn create_network(
    docker: &DockerClient,
    request: NetworkCreateRequest,
) -> Result<Option<Net>, DockerError> {
    let exhausted = match docker.create_network(request.clone()).await {
        Ok(()) => return Ok(None),
        Err(e @ DockerError::NoAddressPool { .. }) => e,
        Err(e) => return Err(e),
    };
    let start = std::process::id() as usize;
    let mut tried = Vec::new();
    for _ in 0..ATTEMPTS {
        let mut taken = docker_subnets(docker).await?;
        taken.extend(host_routes());
        taken.extend(tried.iter().copied());
        let Some(subnet) = pick(&taken, start) else {
            break;
        };
        let mut explicit = request.clone();
        explicit.ipam = Some(Ipam {
            driver: Some("default".into()),
            config: Some(vec![IpamConfig {
                subnet: Some(subnet.to_string()),
                ..Default::default()
            }]),
            options: None,
        });
        match docker.create_network(explicit).await {
            Ok(()) => return Ok(Some(subnet)),
            // Another run took it between the listing and the create: the next one.
            Err(e) if overlap_refused(&e) => tried.push(subnet),
            Err(e) => return Err(e),
        }
    }
    // Every subnet of the range is in use (or kept being taken): the engine's own error, which
    // says how to give it more.
    Err(exhausted)
}

/// The first /24 of [`RANGE`], from the `start`th on and wrapping around, that overlaps none of
/// `taken`. Runs starting at once begin at different places (`start` is the process id), so they
/// seldom reach for the same one.
pub fn pick(taken: &[Net], start: usize) -> Option<Net> {
    let count = 1usize << (PREFIX - RANGE.prefix);
    (0..count)
        .map(|i| (start + i) % count)
        .map(|i| Net::new(RANGE.base + ((i as u32) << (32 - PREFIX)), PREFIX))
        .find(|candidate| !taken.iter().any(|t| t.overlaps(candidate)))
}

fn overlap_refused(e: &DockerError) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("overlap")
}

/// The IPv4 subnets of every network the engine has.
async fn docker_subnets(docker: &DockerClient) -> Result<Vec<Net>, DockerError> {
    let networks = docker.list_networks(&Default::default()).await?;
    Ok(networks
        .iter()
        .filter_map(|n| n.ipam.as_ref()?.config.as_ref())
        .flatten()
        .filter_map(|c| Net::parse(c.subnet.as_deref()?))
        .collect())
}

/// The networks this host routes to (from /proc/net/route), but the default route: a subnet there
/// would hide a network the host reaches (a VPN's, say).
fn host_routes() -> Vec<Net> {
    std::fs::read_to_string("/proc/net/route")
        .map(|table| routes(&table))
        .unwrap_or_default()
}

/// Parses /proc/net/route's destinations and masks.
fn routes(table: &str) -> Vec<Net> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // The kernel prints the address as the number its bytes make in this host's order.
            let address = |field: &str| {
                u32::from_str_radix(field, 16)
                    .ok()
                    .map(|v| u32::from_be_bytes(v.to_ne_bytes()))
            };
            let destination = address(fields.get(1)?)?;
            let mask = address(fields.get(7)?)?;
            let prefix = mask.count_ones() as u8;
            (prefix > 0).then(|| Net::new(destination, prefix))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Net {
        Net::parse(text).unwrap()
    }

    #[test]
    fn a_subnet_is_picked_past_those_in_use_and_wraps_around() {
        assert_eq!(pick(&[], 0), Some(net("10.201.0.0/24")));
        assert_eq!(pick(&[], 300), Some(net("10.201.44.0/24")));
        let taken = [net("10.201.0.0/23"), net("172.17.0.0/16")];
        assert_eq!(pick(&taken, 0), Some(net("10.201.2.0/24")));
        assert_eq!(pick(&taken, 255), Some(net("10.201.255.0/24")));
        assert_eq!(
            pick(&[net("10.201.255.0/24"), net("10.201.0.0/24")], 255),
            Some(net("10.201.1.0/24"))
        );
        // A route covering the whole range (a VPN's 10.0.0.0/8) leaves nothing.
        assert_eq!(pick(&[net("10.0.0.0/8")], 7), None);
    }

    #[test]
    fn nets_parse_and_overlap_as_addresses_do() {
        assert_eq!(net("10.201.3.7/24").to_string(), "10.201.3.0/24");
        assert!(Net::parse("fd00::/64").is_none());
        assert!(Net::parse("10.0.0.0/33").is_none());
        assert!(net("10.0.0.0/8").overlaps(&net("10.201.3.0/24")));
        assert!(net("10.201.3.0/24").overlaps(&net("10.0.0.0/8")));
        assert!(!net("10.201.3.0/24").overlaps(&net("10.201.4.0/24")));
        assert!(!net("192.168.0.0/20").overlaps(&net("192.168.16.0/20")));
    }

    #[test]
    fn host_routes_are_read_from_the_kernels_table_but_the_default() {
        let table = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
";
        assert_eq!(
            routes(table),
            vec![net("172.17.0.0/16"), net("192.0.2.0/24")]
        );
    }
}
