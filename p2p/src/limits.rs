//! Connection limits that many cheap identities cannot turn into an eclipse: separate budgets
//! for inbound and outbound connections, a cap on inbound peers per address, slots of their own
//! for priority peers, and bans of addresses that keep producing banned peers.
//!
//! Peer ids cost nothing to mint, so anything counted per peer id alone is the attacker's to
//! fill. Hence:
//! - **Inbound and outbound apart.** Identities that dial us can fill the inbound budget only;
//!   the slots we dial out with stay ours.
//! - **Per address.** At most `inbound_peers_per_ip_max` inbound peers from one IPv4 address or
//!   one IPv6 /64 (what one host usually gets), so filling the inbound budget takes many
//!   addresses, not many keys.
//! - **Priority peers** (the bootnodes, the reserved peers and `Config::priority_peers`) are
//!   never refused for lack of a slot: they count toward no budget and no address cap. A node
//!   flooded by fresh identities still connects to them, and nothing needs evicting to make room.
//!   The extra connections are bounded by the set: at most [`PRIORITY_PEERS_MAX`] ids, each
//!   with the per-peer connection limit. A bootnode given by address alone is recognised by the
//!   address we dialed, and its peer id is learned then.
//! - **Address bans.** When [`IP_BAN_OFFENCES`] peers from one address are banned by the score
//!   within a ban period, the address is banned for a ban period too: minting a new identity no
//!   longer buys a fresh start, a new address is needed. Only inbound connections of
//!   non-priority peers are refused, so an honest validator sharing an address with an attacker
//!   (a NAT) stays reachable once it is listed as a priority peer.
//!
//! Loopback addresses are exempt from the address cap and the address bans unless
//! `Config::limit_loopback` is set: local testnets run every node on 127.0.0.1, one misbehaving
//! test peer would otherwise take all the others down with it, and a process on this machine
//! needs no address cap to be kept from eclipsing us (it shares the host).
//!
//! Every decision is taken when a connection is established, once the peer id is known, so that
//! priority peers are recognised whatever their address. The handshakes of refused
//! connections are bounded by the limit on pending connections.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::task::{Context, Poll};
use std::time::Instant;

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::{
    dummy, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

use crate::score::BAN_DURATION;

/// The most peer ids that count as priority peers, all sources together (bootnodes and listed
/// priority peers first, then the reserved peers); beyond it a peer is an ordinary one.
pub(crate) const PRIORITY_PEERS_MAX: usize = 128;
/// Peers from one address banned within one ban period that ban the address.
pub(crate) const IP_BAN_OFFENCES: u32 = 3;
/// Addresses whose offences are remembered; beyond it, new offenders are only logged (their
/// peers are still banned one by one).
const IP_OFFENDERS_MAX: usize = 4096;

/// One address as far as the limits go: an IPv4 address, or the /64 prefix of an IPv6 address
/// (IPv4-mapped IPv6 counts as IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum IpGroup {
    V4(Ipv4Addr),
    V6Net([u16; 4]),
}

impl IpGroup {
    /// The group of `/ip4|ip6/<addr>/...` and whether it is a loopback address.
    pub(crate) fn of(addr: &Multiaddr) -> Option<(IpGroup, bool)> {
        match addr.iter().next()? {
            Protocol::Ip4(ip) => Some((IpGroup::V4(ip), ip.is_loopback())),
            Protocol::Ip6(ip) => match ip.to_ipv4_mapped() {
                Some(v4) => Some((IpGroup::V4(v4), v4.is_loopback())),
                None => {
                    let [a, b, c, d, ..] = ip.segments();
                    Some((IpGroup::V6Net([a, b, c, d]), ip.is_loopback()))
                }
            },
            _ => None,
        }
    }
}

/// The budgets, from the [`crate::Config`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) inbound_max: usize,
    pub(crate) outbound_max: usize,
    pub(crate) per_ip_max: usize,
    pub(crate) limit_loopback: bool,
}

/// An established connection.
#[derive(Debug)]
struct Conn {
    peer: PeerId,
    inbound: bool,
    /// The remote address's group, if the address limits apply to it.
    group: Option<IpGroup>,
}

/// Banned peers from one address within the current period.
#[derive(Debug)]
struct Offences {
    count: u32,
    since: Instant,
}

#[derive(Debug)]
pub(crate) struct Behaviour {
    settings: Settings,
    /// Bootnodes named by id and the listed priority peers, in the order given.
    fixed: Vec<PeerId>,
    /// Bootnodes given by address alone, and the peer id last found there.
    unnamed: HashMap<Multiaddr, Option<PeerId>>,
    /// The reserved peers in force.
    reserved: Vec<PeerId>,
    /// All of the above, at most [`PRIORITY_PEERS_MAX`].
    priority: HashSet<PeerId>,
    connections: HashMap<ConnectionId, Conn>,
    offences: HashMap<IpGroup, Offences>,
    ip_bans: HashMap<IpGroup, Instant>,
}

impl Behaviour {
    pub(crate) fn new(
        settings: Settings,
        fixed: Vec<PeerId>,
        unnamed: Vec<Multiaddr>,
        reserved: Option<&HashSet<PeerId>>,
    ) -> Behaviour {
        let mut behaviour = Behaviour {
            settings,
            fixed,
            unnamed: unnamed.into_iter().map(|addr| (addr, None)).collect(),
            reserved: Vec::new(),
            priority: HashSet::new(),
            connections: HashMap::new(),
            offences: HashMap::new(),
            ip_bans: HashMap::new(),
        };
        behaviour.set_reserved(reserved);
        behaviour
    }

    /// Replaces the reserved peers' share of the priority set.
    pub(crate) fn set_reserved(&mut self, reserved: Option<&HashSet<PeerId>>) {
        self.reserved = reserved.map(|set| set.iter().copied().collect()).unwrap_or_default();
        // The order within the set is arbitrary; only a set over the cap makes it matter.
        self.reserved.sort_unstable();
        self.rebuild_priority();
    }

    fn rebuild_priority(&mut self) {
        let learned = self.unnamed.values().flatten();
        let all = self.fixed.iter().chain(learned).chain(self.reserved.iter());
        self.priority = all.copied().take(PRIORITY_PEERS_MAX).collect();
        let wanted = self.fixed.len() + self.unnamed.len() + self.reserved.len();
        if wanted > PRIORITY_PEERS_MAX {
            tracing::warn!(target: "p2p", wanted, max = PRIORITY_PEERS_MAX, "too many priority peers: the rest are ordinary peers");
        }
    }

    pub(crate) fn is_priority(&self, peer: &PeerId) -> bool {
        self.priority.contains(peer)
    }

    /// The peer id found at an unnamed bootnode's address, once we have reached it.
    pub(crate) fn found_at(&self, addr: &Multiaddr) -> Option<PeerId> {
        self.unnamed.get(addr).copied().flatten()
    }

    /// The priority peers, for re-dialing.
    pub(crate) fn priority_peers(&self) -> Vec<PeerId> {
        self.priority.iter().copied().collect()
    }

    /// Whether the outbound budget is spent (priority peers do not need it).
    pub(crate) fn outbound_full(&self) -> bool {
        self.counted(false) >= self.settings.outbound_max
    }

    /// Non-priority connections one way.
    fn counted(&self, inbound: bool) -> usize {
        self.connections.values().filter(|c| c.inbound == inbound && !self.is_priority(&c.peer)).count()
    }

    /// The group of `addr` if the address limits apply to it.
    fn limited_group(&self, addr: &Multiaddr) -> Option<IpGroup> {
        IpGroup::of(addr).filter(|(_, loopback)| !loopback || self.settings.limit_loopback).map(|(group, _)| group)
    }

    fn check_inbound(&self, peer: &PeerId, remote: &Multiaddr) -> Result<(), String> {
        if self.is_priority(peer) {
            return Ok(());
        }
        let group = self.limited_group(remote);
        if let Some(group) = group.filter(|g| self.ip_bans.contains_key(g)) {
            return Err(format!("address {group:?} is banned"));
        }
        if self.counted(true) >= self.settings.inbound_max {
            return Err(format!("inbound limit of {} reached", self.settings.inbound_max));
        }
        let Some(group) = group else { return Ok(()) };
        let same_address: HashSet<&PeerId> = self
            .connections
            .values()
            .filter(|c| c.inbound && c.group == Some(group) && c.peer != *peer && !self.is_priority(&c.peer))
            .map(|c| &c.peer)
            .collect();
        if same_address.len() >= self.settings.per_ip_max {
            return Err(format!("{} inbound peers from {group:?} already", same_address.len()));
        }
        Ok(())
    }

    /// Admits an outbound connection; one to an unnamed bootnode's address teaches us its id.
    fn check_outbound(&mut self, peer: &PeerId, addr: &Multiaddr) -> Result<(), String> {
        let mut addr = addr.clone();
        if let Some(Protocol::P2p(_)) = addr.iter().last() {
            addr.pop();
        }
        if let Some(known) = self.unnamed.get_mut(&addr) {
            if *known != Some(*peer) {
                *known = Some(*peer);
                self.rebuild_priority();
            }
            return Ok(());
        }
        if self.is_priority(peer) || !self.outbound_full() {
            return Ok(());
        }
        Err(format!("outbound limit of {} reached", self.settings.outbound_max))
    }

    /// Counts the ban of a peer connected from `addr`; returns the address's group if that ban
    /// bans the address too.
    pub(crate) fn record_ban(&mut self, addr: &Multiaddr, now: Instant) -> Option<IpGroup> {
        let group = self.limited_group(addr)?;
        if self.ip_bans.contains_key(&group) {
            return None;
        }
        if !self.offences.contains_key(&group) && self.offences.len() >= IP_OFFENDERS_MAX {
            tracing::warn!(target: "p2p", ?group, "address offence not recorded: table full");
            return None;
        }
        let offences = self.offences.entry(group).or_insert(Offences { count: 0, since: now });
        offences.count = offences.count.saturating_add(1);
        if offences.count < IP_BAN_OFFENCES {
            return None;
        }
        self.offences.remove(&group);
        self.ip_bans.insert(group, now + BAN_DURATION);
        tracing::warn!(target: "p2p", ?group, ban_secs = BAN_DURATION.as_secs(), "address banned: repeat offender");
        Some(group)
    }

    /// Whether a peer connected from `addr` falls under the ban of `group`.
    pub(crate) fn in_group(&self, addr: &Multiaddr, group: IpGroup) -> bool {
        self.limited_group(addr) == Some(group)
    }

    /// Lifts the address bans that have expired by `now` and forgets offences older than a ban
    /// period.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.ip_bans.retain(|group, until| {
            let keep = *until > now;
            if !keep {
                tracing::info!(target: "p2p", ?group, "address ban lifted");
            }
            keep
        });
        self.offences.retain(|_, o| now.saturating_duration_since(o.since) < BAN_DURATION);
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check_inbound(&peer, remote).map_err(ConnectionDenied::new)?;
        Ok(dummy::ConnectionHandler)
    }

    // Refusing before any socket is opened spares Kademlia's dials a handshake each once the
    // outbound budget is spent.
    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        match peer {
            Some(peer) if !self.is_priority(&peer) && self.outbound_full() => {
                Err(ConnectionDenied::new(format!("outbound limit of {} reached", self.settings.outbound_max)))
            }
            _ => Ok(Vec::new()),
        }
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check_outbound(&peer, addr).map_err(ConnectionDenied::new)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished { peer_id, connection_id, endpoint, .. }) => {
                let group = self.limited_group(endpoint.get_remote_address());
                let conn = Conn { peer: peer_id, inbound: endpoint.is_listener(), group };
                self.connections.insert(connection_id, conn);
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.connections.remove(&connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, event: THandlerOutEvent<Self>) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: Settings = Settings { inbound_max: 3, outbound_max: 1, per_ip_max: 2, limit_loopback: false };

    fn addr(text: &str) -> Multiaddr {
        text.parse().expect("a multiaddr")
    }

    fn connect(limits: &mut Behaviour, peer: PeerId, inbound: bool, remote: &Multiaddr) {
        let group = limits.limited_group(remote);
        limits.connections.insert(ConnectionId::new_unchecked(limits.connections.len()), Conn { peer, inbound, group });
    }

    #[test]
    fn one_address_gets_its_cap_of_inbound_peers_and_loopback_is_exempt_by_default() {
        let mut limits = Behaviour::new(SETTINGS, Vec::new(), Vec::new(), None);
        let remote = addr("/ip4/203.0.113.7/tcp/4000");
        for _ in 0..2 {
            let peer = PeerId::random();
            assert!(limits.check_inbound(&peer, &remote).is_ok());
            connect(&mut limits, peer, true, &remote);
        }
        assert!(limits.check_inbound(&PeerId::random(), &remote).is_err(), "a third peer from one address");
        assert!(limits.check_inbound(&PeerId::random(), &addr("/ip4/203.0.113.8/tcp/1")).is_ok());
        let local = addr("/ip4/127.0.0.1/tcp/4000");
        assert!(limits.check_inbound(&PeerId::random(), &local).is_ok());
        connect(&mut limits, PeerId::random(), true, &local);
        assert!(limits.check_inbound(&PeerId::random(), &local).is_err(), "the inbound budget is spent");
    }

    #[test]
    fn ipv6_addresses_of_one_slash_64_share_a_cap() {
        let (a, _) = IpGroup::of(&addr("/ip6/2001:db8:1:2::1/tcp/1")).expect("an IP");
        let (b, _) = IpGroup::of(&addr("/ip6/2001:db8:1:2:ffff::9/tcp/1")).expect("an IP");
        let (c, _) = IpGroup::of(&addr("/ip6/2001:db8:1:3::1/tcp/1")).expect("an IP");
        assert_eq!(a, b);
        assert_ne!(a, c);
        let (mapped, loopback) = IpGroup::of(&addr("/ip6/::ffff:127.0.0.1/tcp/1")).expect("an IP");
        assert_eq!(mapped, IpGroup::V4(Ipv4Addr::LOCALHOST));
        assert!(loopback);
    }

    #[test]
    fn priority_peers_get_in_when_every_budget_is_spent() {
        let (boot, listed) = (PeerId::random(), PeerId::random());
        let unnamed = addr("/ip4/198.51.100.1/tcp/30333");
        let mut limits = Behaviour::new(SETTINGS, vec![listed], vec![unnamed.clone()], Some(&HashSet::from([boot])));
        let remote = addr("/ip4/203.0.113.7/tcp/4000");
        for _ in 0..3 {
            connect(&mut limits, PeerId::random(), true, &remote);
        }
        connect(&mut limits, PeerId::random(), false, &remote);
        assert!(limits.check_inbound(&PeerId::random(), &addr("/ip4/203.0.113.9/tcp/1")).is_err());
        assert!(limits.check_outbound(&PeerId::random(), &remote).is_err());
        assert!(limits.check_inbound(&boot, &remote).is_ok());
        assert!(limits.check_outbound(&listed, &remote).is_ok());

        // A bootnode known by address alone is admitted there, and recognised by id afterwards.
        let found = PeerId::random();
        assert!(limits.check_outbound(&found, &unnamed.clone().with(Protocol::P2p(found))).is_ok());
        assert!(limits.is_priority(&found));
        assert!(limits.check_inbound(&found, &remote).is_ok());
    }

    #[test]
    fn an_address_is_banned_after_repeat_offences_only_and_the_ban_expires() {
        let mut limits = Behaviour::new(SETTINGS, Vec::new(), Vec::new(), None);
        let remote = addr("/ip4/203.0.113.7/tcp/4000");
        let now = Instant::now();
        for _ in 1..IP_BAN_OFFENCES {
            assert_eq!(limits.record_ban(&remote, now), None);
        }
        assert!(limits.check_inbound(&PeerId::random(), &remote).is_ok());
        let (group, _) = IpGroup::of(&remote).expect("an IP");
        assert_eq!(limits.record_ban(&remote, now), Some(group));
        assert!(limits.check_inbound(&PeerId::random(), &remote).is_err());
        assert!(limits.check_inbound(&PeerId::random(), &addr("/ip4/203.0.113.8/tcp/1")).is_ok());
        limits.expire(now + BAN_DURATION);
        assert!(limits.check_inbound(&PeerId::random(), &remote).is_ok());

        // Loopback offenders never ban 127.0.0.1 unless asked to.
        let local = addr("/ip4/127.0.0.1/tcp/1");
        for _ in 0..IP_BAN_OFFENCES {
            assert_eq!(limits.record_ban(&local, now), None);
        }
    }
}
