//! A consensus message as gossip delivers it (proposal, vote or certificate): decoded with the
//! limit its tag selects, re-encoded to the same bytes, then `Message::verify` against the fixed
//! four-validator network, as the node does before it forwards anything.

#![no_main]

use libfuzzer_sys::fuzz_target;
use taksa_consensus::engine::Message;
use taksa_fuzz::{assert_canonical, net};

fuzz_target!(|bytes: &[u8]| {
    let Ok(msg) = Message::decode(bytes) else { return };
    assert_canonical("consensus message", bytes, &msg.encode());
    let _ = msg.view();
    let net = net();
    let _ = msg.epoch();
    let verdict = msg.verify(&net.domain, &net.validators, taksa_consensus::Epochs::new(1_000));
    if let Message::Proposal { block, .. } = &msg {
        let shape = block.check_shape();
        // Verifying a proposal includes its shape: nothing that verifies may be misshapen.
        assert!(verdict.is_err() || shape.is_ok(), "a proposal verified with a bad shape: {shape:?}");
    }
});
