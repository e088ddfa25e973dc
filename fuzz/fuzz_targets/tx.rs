//! A signed transaction as a peer gossips it and a client submits it (once un-hexed): decoded with
//! the 1 KiB limit, re-encoded to the same bytes, then the stateless admission checks.

#![no_main]

use libfuzzer_sys::fuzz_target;
use taksa_consensus::SignedTransaction;
use taksa_fuzz::{assert_canonical, CHAIN_ID, FEE_FLOOR, GENESIS_HASH};

fuzz_target!(|bytes: &[u8]| {
    let Ok(stx) = SignedTransaction::decode(bytes) else { return };
    assert_canonical("transaction", bytes, &stx.encode());
    let _ = stx.hash();
    // What admission runs next: for this network (refused early on another chain id) and for the
    // transaction's own chain id, so the memo, fee, overflow and signature checks see fuzzed
    // values too. Bad input is an error, never a panic.
    let _ = stx.check_stateless(CHAIN_ID, &GENESIS_HASH, FEE_FLOOR);
    let _ = stx.check_stateless(&stx.tx.chain_id, &GENESIS_HASH, FEE_FLOOR);
});
