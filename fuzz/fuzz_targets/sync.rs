//! The payload of a sync frame, as a request (1 KiB limit) and as a response (16 MiB limit, 64 MiB
//! decode budget). `p2p/src/codec.rs` reads a u32 length, refuses one over the limit before it
//! reads or allocates, then decodes exactly the payload with `codec::decode` and that limit; its
//! framing functions are private to p2p, so this decodes the payload the same way. Decoded
//! values must re-encode to the same bytes; the checks the node runs next must not panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use taksa_consensus::codec;
use taksa_fuzz::{assert_canonical, net};
use taksa_p2p::{Request, Response, SYNC_REQUEST_BYTES_MAX, SYNC_RESPONSE_BYTES_MAX};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(request) = codec::decode::<Request>(bytes, SYNC_REQUEST_BYTES_MAX) {
        assert_canonical("sync request", bytes, &codec::encode(&request));
    }
    let Ok(response) = codec::decode::<Response>(bytes, SYNC_RESPONSE_BYTES_MAX) else { return };
    assert_canonical("sync response", bytes, &codec::encode(&response));
    let net = net();
    let verify = |cert: &Option<taksa_consensus::Certificate>| {
        if let Some(cert) = cert {
            let _ = cert.verify(&net.domain, &net.validators);
        }
    };
    match &response {
        Response::Status { head, finalization } => {
            let _ = head.hash();
            verify(finalization);
        }
        Response::Blocks(blocks) => {
            for finalized in blocks {
                let _ = finalized.block.check_shape();
                verify(&finalized.finalization);
            }
        }
        Response::Block(Some(block)) => {
            let _ = block.check_shape();
        }
        Response::Block(None) => {}
    }
});
