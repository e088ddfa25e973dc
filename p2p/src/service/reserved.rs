//! Reserved peers inside the swarm task: applying a new set closes the connections it no longer
//! allows and dials the known peers it does, so lifting a restriction reconnects the node by
//! itself.

use std::collections::HashSet;

use libp2p::Multiaddr;

use super::Service;
use crate::PeerId;

impl Service {
    /// Whether we may be connected to `peer` at all: reserved (or no set in force) and not
    /// banned. The swarm enforces both; checking first spares dials that would be refused.
    pub(super) fn may_connect(&self, peer: &libp2p::PeerId) -> bool {
        self.swarm.behaviour().reserved.allows(peer) && !self.scores.is_banned(peer)
    }

    pub(super) fn set_reserved(&mut self, peers: Option<Vec<PeerId>>) {
        let set: Option<HashSet<libp2p::PeerId>> = peers.map(|peers| peers.into_iter().map(|p| p.0).collect());
        self.swarm.behaviour_mut().limits.set_reserved(set.as_ref());
        let reserved = &mut self.swarm.behaviour_mut().reserved;
        reserved.set(set);
        match reserved.len() {
            Some(count) => tracing::info!(target: "p2p", reserved = count, "reserved peers only"),
            None => tracing::info!(target: "p2p", "reserved peers lifted: any peer may connect"),
        }
        let reserved = &self.swarm.behaviour().reserved;
        let refused: Vec<libp2p::PeerId> =
            self.swarm.connected_peers().filter(|p| !reserved.allows(p)).copied().collect();
        for peer in refused {
            tracing::debug!(target: "p2p", %peer, "disconnecting a peer that is not reserved");
            // An error only means the peer is already gone.
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        self.dial_known();
    }

    /// Dials every peer in Kademlia's table that we may connect to and are not connected to,
    /// then the bootnodes that name their peer id. The others come back by themselves: a peer
    /// that dials us is no longer refused.
    fn dial_known(&mut self) {
        let known: Vec<(libp2p::PeerId, Vec<Multiaddr>)> = self
            .swarm
            .behaviour_mut()
            .kad
            .kbuckets()
            .flat_map(|bucket| {
                let entries = bucket.iter().map(|e| (*e.node.key.preimage(), e.node.value.iter().cloned().collect()));
                entries.collect::<Vec<_>>()
            })
            .collect();
        for (peer, addrs) in known {
            self.discovered(peer, addrs);
        }
        self.dial_bootnodes(false);
    }
}
