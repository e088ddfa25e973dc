//! End-to-end tests: the real `taksa` binary on loopback ports it picks itself.

mod bad_input;
mod browser;
mod byzantine;
mod deploy;
mod events;
mod export;
mod flood;
mod instant;
mod network;
mod pool;
mod replay;
mod restart;
mod support;
mod testnet;
mod testnet_cli;
mod validators;
mod wallet_flow;
