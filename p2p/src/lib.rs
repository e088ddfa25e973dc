//! Taksa's peer-to-peer network: libp2p gossip of transactions and consensus messages and
//! request-response sync of finalized blocks, behind a small handle so that the rest of the
//! node never sees libp2p.
//!
//! Not built yet: this milestone runs single-validator networks, where the consensus engine
//! needs no peers. The validator network is the next milestone.
