//! Integration tests of the consensus crate: golden encodings, rule properties, the consensus
//! message codec and the deterministic simulation of many engines.

mod golden;
mod message_codec;
mod rules;
mod sim;
mod simulation;
