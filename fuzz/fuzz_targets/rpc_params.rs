//! What a JSON-RPC client's parameters are parsed with. The parameter readers themselves
//! (`rpc/src/params.rs`, `rpc/src/cursor.rs`) are private to the rpc crate, and its only public
//! entry is a running server, so this target parses the text as the server does
//! (`serde_json::from_str` into a `Value`) and feeds every string in it (or the whole text, when
//! it is not JSON) to the public parsers those readers call: `Address::parse`, `Hash::from_hex`,
//! `parse_amount` and `tx_submit`'s hex-then-decode path, mirrored. Whatever parses must print
//! back to its input (up to case and leading zeros) and nothing may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use taksa_consensus::genesis::parse_amount;
use taksa_consensus::{codec, Address, Hash, SignedTransaction};
use taksa_fuzz::{CHAIN_ID, FEE_FLOOR, GENESIS_HASH, HRP};

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        check_param(text);
        return;
    };
    // serde_json refuses nesting deeper than 128, and the stack holds each value once.
    let mut stack = vec![&value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => check_param(s),
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                for (name, v) in map {
                    check_param(name);
                    stack.push(v);
                }
            }
            Value::Number(n) => {
                let _ = n.as_u64();
            }
            Value::Null | Value::Bool(_) => {}
        }
    }
});

fn check_param(s: &str) {
    if let Ok(address) = Address::parse(s, HRP) {
        assert_eq!(address.to_bech32(HRP), s.to_ascii_lowercase(), "address {s:?}");
    }
    if let Ok(hash) = Hash::from_hex(s) {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        assert_eq!(hash.to_hex(), format!("0x{}", digits.to_ascii_lowercase()), "hash {s:?}");
    }
    if let Ok(amount) = parse_amount(s) {
        let digits = s.trim_start_matches('0');
        assert_eq!(amount.to_string(), if digits.is_empty() { "0" } else { digits }, "amount {s:?}");
    }
    signed_tx_hex(s);
}

/// `tx_submit`'s parameter, as `rpc/src/params.rs::signed_tx` reads it: the length is checked
/// before the hex is decoded, then the 1 KiB decode; a decoded transaction re-encodes to the
/// same bytes and goes through the stateless admission checks.
fn signed_tx_hex(s: &str) {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    if digits.len().div_ceil(2) > codec::TX_BYTES_MAX {
        return;
    }
    let Ok(bytes) = hex::decode(digits) else { return };
    let Ok(stx) = SignedTransaction::decode(&bytes) else { return };
    assert_eq!(hex::encode(stx.encode()), digits.to_ascii_lowercase(), "transaction hex");
    let _ = stx.check_stateless(CHAIN_ID, &GENESIS_HASH, FEE_FLOOR);
}
