//! The Taksa node: validator, full node, dev chain, wallet client and bench.
//!
//! Bird's-eye view: [`cli`] parses the command line and starts one of the services;
//! `run` opens storage and starts the chain thread and the JSON-RPC server; `chain` drives the
//! consensus engine, builds and executes blocks and commits what is finalized; `taksa_consensus::pool` admits
//! transactions; `backend` answers JSON-RPC from storage and the pool; `wallet` is the
//! key-holding client; `bench` the load driver; [`devnet`] the embedded dev and testnet genesis;
//! `reserved` follows the reserved peers file of `taksa node --reserved-peers-file`.

mod admission;
mod backend;
mod bench;
mod bench_chain;
mod bench_state;
mod bench_tree;
mod chain;
pub mod cli;
pub mod config;
mod db_tools;
pub mod devnet;
mod export;
mod network;
mod receipt_cmd;
mod reserved;
mod run;
mod supervise;
pub mod testnet;
mod validator_cmd;
mod wallet;
