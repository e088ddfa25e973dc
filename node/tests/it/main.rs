//! End-to-end tests: the real `taksa` binary on loopback ports it picks itself.

mod bad_input;
mod restart;
mod support;
mod wallet_flow;
