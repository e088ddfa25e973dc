//! The wallet: keys from BIP39 mnemonics (SLIP-0010 ed25519), encrypted key files, and the
//! `taksa wallet` commands that sign transfers and talk to a node over JSON-RPC.
//!
//! - [`keys`]: mnemonic, derivation path, key pair.
//! - [`keystore`]: Argon2id + XChaCha20-Poly1305 key files, also used for validator keys.
//! - [`prompt`]: passwords and mnemonics from files, environment, stdin or the terminal.
//! - [`amount`]: TKS decimal amounts and base units.
//! - [`client`]: typed JSON-RPC calls.
//! - [`cli`]: the subcommands.
//!
//! The byte format of what is signed is written out in `docs/transaction-format.md`, with test
//! vectors in `docs/test-vectors.json` that the `vectors` tests recompute.

pub(crate) mod amount;
pub(crate) mod cli;
pub(crate) mod client;
pub(crate) mod keys;
pub(crate) mod keystore;
pub(crate) mod prompt;
#[cfg(test)]
mod vectors;
