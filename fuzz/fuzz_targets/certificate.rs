//! A certificate, decoded with the consensus message limit, re-encoded to the same bytes, then
//! verified against the fixed four-validator network (bitmap, quorum, signatures).

#![no_main]

use libfuzzer_sys::fuzz_target;
use taksa_consensus::{codec, Certificate};
use taksa_fuzz::{assert_canonical, net};

fuzz_target!(|bytes: &[u8]| {
    let Ok(cert) = codec::decode::<Certificate>(bytes, codec::MESSAGE_BYTES_MAX) else { return };
    assert_canonical("certificate", bytes, &cert.encode());
    let _ = cert.signer_indices();
    let net = net();
    let _ = cert.verify(&net.domain, &net.validators);
});
