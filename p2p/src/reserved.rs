//! Reserved peers: when the node restricts itself to a known set of peers, every connection to or
//! from anyone else is refused, whichever side dials and whatever protocol asked for it.
//!
//! This is a libp2p behaviour so that the refusal happens inside the swarm, before a connection
//! reaches gossipsub, sync, identify or Kademlia. It is independent of the ban list of the
//! scoring: a peer must be both reserved (or no list set) and not banned to connect. Closing the
//! connections that are already open when the list changes is up to the swarm task.

use std::collections::HashSet;
use std::convert::Infallible;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent,
    ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// The reserved set; `None` lets anyone connect.
#[derive(Debug, Default)]
pub(crate) struct Behaviour {
    reserved: Option<HashSet<PeerId>>,
}

impl Behaviour {
    pub(crate) fn new(reserved: Option<HashSet<PeerId>>) -> Behaviour {
        Behaviour { reserved }
    }

    /// Replaces the set. Open connections are not touched here: the swarm task closes those of
    /// peers no longer allowed.
    pub(crate) fn set(&mut self, reserved: Option<HashSet<PeerId>>) {
        self.reserved = reserved;
    }

    /// Whether `peer` may connect: no set, or `peer` is in it.
    pub(crate) fn allows(&self, peer: &PeerId) -> bool {
        self.reserved.as_ref().is_none_or(|set| set.contains(peer))
    }

    /// How many peers are reserved; `None` when unrestricted.
    pub(crate) fn len(&self) -> Option<usize> {
        self.reserved.as_ref().map(HashSet::len)
    }

    fn enforce(&self, peer: &PeerId) -> Result<(), ConnectionDenied> {
        if self.allows(peer) {
            Ok(())
        } else {
            Err(ConnectionDenied::new(format!("peer {peer} is not a reserved peer")))
        }
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
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.enforce(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    // Refusing here, before any socket is opened, is what keeps Kademlia's own dials of
    // non-reserved peers free: they fail at once instead of costing a handshake each.
    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if let Some(peer) = peer {
            self.enforce(&peer)?;
        }
        Ok(Vec::new())
    }

    // Dials by address alone (a bootnode without `/p2p/<id>`) learn the peer only here.
    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.enforce(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

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

    #[test]
    fn only_reserved_peers_are_allowed_while_a_set_is_in_force() {
        let (kept, other) = (PeerId::random(), PeerId::random());
        let mut behaviour = Behaviour::new(None);
        assert!(behaviour.allows(&kept) && behaviour.allows(&other));
        assert_eq!(behaviour.len(), None);

        behaviour.set(Some(HashSet::from([kept])));
        assert!(behaviour.allows(&kept));
        assert!(!behaviour.allows(&other));
        assert_eq!(behaviour.len(), Some(1));
        assert!(behaviour.enforce(&other).is_err());

        behaviour.set(Some(HashSet::new()));
        assert!(!behaviour.allows(&kept), "an empty set allows nobody");

        behaviour.set(None);
        assert!(behaviour.allows(&other));
    }
}
