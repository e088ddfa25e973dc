//! Integration tests of the consensus crate: golden encodings, rule properties, the consensus
//! message codec, the deterministic simulation of many engines, and the simulation of the chain
//! layer (chain core, pool, store) on many nodes.

mod chain_sim;
mod chain_sync;
mod golden;
mod message_codec;
mod receipts;
mod rules;
mod seeds;
mod sim;
mod simulation;
mod simulation_chain;
mod state_tree;
