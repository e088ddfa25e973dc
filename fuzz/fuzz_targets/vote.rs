//! A vote, decoded with the consensus message limit, re-encoded to the same bytes, then verified
//! against the fixed four-validator network.

#![no_main]

use libfuzzer_sys::fuzz_target;
use taksa_consensus::{codec, Vote};
use taksa_fuzz::{assert_canonical, net};

fuzz_target!(|bytes: &[u8]| {
    let Ok(vote) = codec::decode::<Vote>(bytes, codec::MESSAGE_BYTES_MAX) else { return };
    assert_canonical("vote", bytes, &codec::encode(&vote));
    let net = net();
    let _ = vote.verify(&net.domain, &net.validators);
    assert!(!vote.conflicts_with(&vote), "a vote conflicts with itself");
});
