//! A block as sync and the chain receive it: decoded with the 4 MiB limit (and 64 MiB decode
//! budget), re-encoded to the same bytes, then its shape checked (counts, bytes, `tx_root`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use taksa_consensus::{block, codec, Block};
use taksa_fuzz::assert_canonical;

fuzz_target!(|bytes: &[u8]| {
    let Ok(decoded) = Block::decode(bytes) else { return };
    assert_canonical("block", bytes, &decoded.encode());
    // `check_shape` measures blocks with `encoded_len`; it must agree with the real encoding.
    assert_eq!(codec::encoded_len(&decoded), bytes.len(), "encoded_len of a decoded block");
    let _ = decoded.hash();
    let _ = block::tx_bytes_max(&decoded.header, &decoded.evidence);
    let _ = decoded.check_shape();
});
