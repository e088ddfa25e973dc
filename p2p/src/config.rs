//! The network's configuration, the protocol names derived from the chain, and address parsing.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use taksa_consensus::Hash;

use crate::{Error, PeerId, Topic};

/// The default limit of inbound connections: the old single limit, so that a bootnode of a
/// local testnet accepts as many nodes as before.
const INBOUND_CONNECTIONS_MAX_DEFAULT: usize = 50;
/// The default limit of outbound connections. Discovery dials up to this many; the validator
/// networks Taksa is tuned for have 4 to 10 nodes, so 20 leaves room for full nodes.
const OUTBOUND_CONNECTIONS_MAX_DEFAULT: usize = 20;
/// The default number of inbound peers per address (an IPv4 address or an IPv6 /64). With 4, an
/// attacker needs 13 addresses to fill 50 inbound slots instead of one.
const INBOUND_PEERS_PER_IP_MAX_DEFAULT: usize = 4;

/// How to run the network.
#[derive(Clone)]
pub struct Config {
    /// Where to listen: `"127.0.0.1:30333"` or `"/ip4/127.0.0.1/tcp/30333"`; port 0 picks a free
    /// port ([`crate::Handle::listen_addrs`] tells which).
    pub listen_addr: String,
    /// Peers to dial at start and whenever we have none: `"host:port"`, `"/ip4/../tcp/.."` or
    /// `"/ip4/../tcp/../p2p/<id>"`.
    pub bootnodes: Vec<String>,
    /// The ed25519 secret seed of the node's network identity; the node persists it so that its
    /// peer id survives restarts.
    pub identity_seed: [u8; 32],
    /// The chain id; it names the topics and protocols, so other networks stay apart.
    pub chain_id: String,
    /// The genesis hash; its first four bytes name the topics and protocols too.
    pub genesis_hash: Hash,
    /// The most inbound connections established at once, not counting priority peers.
    pub inbound_connections_max: usize,
    /// The most outbound connections established at once, not counting priority peers.
    pub outbound_connections_max: usize,
    /// The most inbound peers from one address (an IPv4 address or an IPv6 /64), not counting
    /// priority peers. Loopback addresses are exempt unless [`Config::limit_loopback`] is set.
    pub inbound_peers_per_ip_max: usize,
    /// Whether the per-address cap and address bans apply to loopback addresses too. Off by
    /// default: a local testnet runs every node on 127.0.0.1 (up to 64 with
    /// `scripts/testnet.sh`), and a process on this machine needs no address cap to be kept
    /// from eclipsing us, it shares the host. Tests of the cap turn it on.
    pub limit_loopback: bool,
    /// Priority peers besides the bootnodes and the reserved peers: they are never refused for
    /// lack of a slot and are re-dialed whenever they are not connected (for validators, list
    /// the other validators). At most `PRIORITY_PEERS_MAX` (128) ids count, all sources together.
    pub priority_peers: Vec<PeerId>,
    /// Reserved peers: `Some(list)` connects to and accepts only these peers (an empty list
    /// means nobody); `None` (the default) accepts anyone. Change it later with
    /// [`crate::Handle::set_reserved`].
    pub reserved: Option<Vec<PeerId>>,
}

impl Config {
    /// A configuration with no bootnodes, no reserved or priority peers and the default
    /// connection limits: 50 inbound, 20 outbound, 4 inbound peers per address.
    pub fn new(
        listen_addr: impl Into<String>,
        chain_id: impl Into<String>,
        genesis_hash: Hash,
        identity_seed: [u8; 32],
    ) -> Config {
        Config {
            listen_addr: listen_addr.into(),
            bootnodes: Vec::new(),
            identity_seed,
            chain_id: chain_id.into(),
            genesis_hash,
            inbound_connections_max: INBOUND_CONNECTIONS_MAX_DEFAULT,
            outbound_connections_max: OUTBOUND_CONNECTIONS_MAX_DEFAULT,
            inbound_peers_per_ip_max: INBOUND_PEERS_PER_IP_MAX_DEFAULT,
            limit_loopback: false,
            priority_peers: Vec::new(),
            reserved: None,
        }
    }
}

impl fmt::Debug for Config {
    // The identity seed is a secret: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen_addr", &self.listen_addr)
            .field("bootnodes", &self.bootnodes)
            .field("chain_id", &self.chain_id)
            .field("genesis_hash", &self.genesis_hash)
            .field("inbound_connections_max", &self.inbound_connections_max)
            .field("outbound_connections_max", &self.outbound_connections_max)
            .field("inbound_peers_per_ip_max", &self.inbound_peers_per_ip_max)
            .field("limit_loopback", &self.limit_loopback)
            .field("priority_peers", &self.priority_peers)
            .field("reserved", &self.reserved)
            .finish_non_exhaustive()
    }
}

/// The names of the topics and protocols of one network.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    prefix: String,
}

impl Names {
    pub(crate) fn new(chain_id: &str, genesis_hash: &Hash) -> Names {
        let short: String = genesis_hash.0.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Names { prefix: format!("/taksa/{chain_id}/{short}") }
    }

    /// `/taksa/{chain_id}/{first 8 hex of the genesis hash}/tx/2` and `.../consensus/2`.
    /// Version 2: transactions in batches, and no libp2p signature on messages (version 1
    /// nodes would refuse them, so they do not share the topics).
    pub(crate) fn topic(&self, topic: Topic) -> String {
        format!("{}/{}/2", self.prefix, topic.suffix())
    }

    pub(crate) fn sync_protocol(&self) -> String {
        format!("{}/sync/2", self.prefix)
    }

    pub(crate) fn kad_protocol(&self) -> String {
        format!("{}/kad/1", self.prefix)
    }
}

/// A parsed address: where to connect and, if the address names it, who should answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PeerAddr {
    pub(crate) addr: Multiaddr,
    pub(crate) peer: Option<libp2p::PeerId>,
}

/// Parses `"host:port"` (an IP, or a name resolved once, now) or a TCP multiaddr, optionally
/// ending in `/p2p/<id>`.
pub(crate) async fn parse_addr(input: &str) -> Result<PeerAddr, Error> {
    let bad = |reason: String| Error::BadAddress { input: input.to_string(), reason };
    if input.starts_with('/') {
        let mut addr: Multiaddr = input.parse().map_err(|e| bad(format!("{e}")))?;
        let peer = match addr.iter().last() {
            Some(Protocol::P2p(peer)) => {
                addr.pop();
                Some(peer)
            }
            _ => None,
        };
        check_tcp(&addr).map_err(|reason| bad(reason.to_string()))?;
        return Ok(PeerAddr { addr, peer });
    }
    let socket = match input.parse::<SocketAddr>() {
        Ok(socket) => socket,
        Err(_) => tokio::net::lookup_host(input)
            .await
            .map_err(|e| bad(format!("not host:port or a multiaddr: {e}")))?
            .next()
            .ok_or_else(|| bad("the name resolves to no address".into()))?,
    };
    Ok(PeerAddr { addr: socket_multiaddr(socket), peer: None })
}

fn socket_multiaddr(socket: SocketAddr) -> Multiaddr {
    let ip = match socket {
        SocketAddr::V4(v4) => Protocol::Ip4(*v4.ip()),
        SocketAddr::V6(v6) => Protocol::Ip6(*v6.ip()),
    };
    Multiaddr::empty().with(ip).with(Protocol::Tcp(socket.port()))
}

/// The socket address of `/ip4|ip6/<addr>/tcp/<port>`.
pub(crate) fn socket_addr(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut parts = addr.iter();
    let ip = match parts.next()? {
        Protocol::Ip4(ip) => IpAddr::V4(ip),
        Protocol::Ip6(ip) => IpAddr::V6(ip),
        _ => return None,
    };
    match (parts.next()?, parts.next()) {
        (Protocol::Tcp(port), None) => Some(SocketAddr::new(ip, port)),
        _ => None,
    }
}

/// Only `/ip4|ip6/<addr>/tcp/<port>` can be dialed or bound: the transport is plain TCP.
pub(crate) fn check_tcp(addr: &Multiaddr) -> Result<(), &'static str> {
    socket_addr(addr).map(|_| ()).ok_or("only /ip4|ip6/<address>/tcp/<port> is supported")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_chain_id_and_genesis_prefix() {
        let mut genesis = [0u8; 32];
        genesis[..4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let names = Names::new("taksa-dev", &Hash(genesis));
        assert_eq!(names.topic(Topic::Transactions), "/taksa/taksa-dev/deadbeef/tx/2");
        assert_eq!(names.topic(Topic::Consensus), "/taksa/taksa-dev/deadbeef/consensus/2");
        assert_eq!(names.sync_protocol(), "/taksa/taksa-dev/deadbeef/sync/2");
    }

    #[tokio::test]
    async fn addresses_parse_in_every_accepted_form() {
        let plain = parse_addr("127.0.0.1:30333").await.expect("parses");
        assert_eq!(plain.addr.to_string(), "/ip4/127.0.0.1/tcp/30333");
        assert_eq!(plain.peer, None);
        let multi = parse_addr("/ip6/::1/tcp/7").await.expect("parses");
        assert_eq!(multi.addr.to_string(), "/ip6/::1/tcp/7");
        let id = libp2p::PeerId::random();
        let with_id = parse_addr(&format!("/ip4/10.0.0.1/tcp/9/p2p/{id}")).await.expect("parses");
        assert_eq!(with_id.addr.to_string(), "/ip4/10.0.0.1/tcp/9");
        assert_eq!(with_id.peer, Some(id));
    }

    #[tokio::test]
    async fn non_tcp_and_garbage_addresses_are_refused() {
        for input in ["/ip4/127.0.0.1/udp/1", "/dns4/example.com/tcp/1", "/ip4/1.2.3.4", "nonsense", ""] {
            assert!(matches!(parse_addr(input).await, Err(Error::BadAddress { .. })), "{input}");
        }
    }
}
