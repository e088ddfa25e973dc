//! Writes the seed inputs of every fuzz target: `seeds OUT_DIR` creates `OUT_DIR/<target>/<n>`.
//! Each seed is checked first (it decodes, and signed ones verify), so the fuzzer starts from
//! structures the node accepts, past the early refusals.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use taksa_consensus::engine::Message;
use taksa_consensus::{codec, Block, Certificate, SignedTransaction, Vote};
use taksa_fuzz::{net, seeds, FEE_FLOOR, GENESIS_HASH};

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: seeds OUT_DIR");
        return ExitCode::from(2);
    };
    for (target, inputs) in seeds() {
        let dir = out.join(target);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("seeds: cannot create {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
        for (i, bytes) in inputs.iter().enumerate() {
            if let Err(why) = check(target, bytes) {
                eprintln!("seeds: seed {i} of {target} is not valid: {why}");
                return ExitCode::FAILURE;
            }
            let path = dir.join(format!("seed-{i}"));
            if let Err(e) = std::fs::write(&path, bytes) {
                eprintln!("seeds: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// Whether a seed is what the node accepts.
fn check(target: &str, bytes: &[u8]) -> Result<(), String> {
    let net = net();
    let (domain, set) = (&net.domain, &net.validators);
    let s = |e: taksa_consensus::Error| e.to_string();
    match target {
        "tx" => SignedTransaction::decode(bytes)
            .map_err(s)?
            .check_stateless(&domain.chain_id, &GENESIS_HASH, FEE_FLOOR)
            .map_err(|e| e.to_string()),
        "block" => Block::decode(bytes).map_err(s)?.check_shape().map_err(s),
        "vote" => codec::decode::<Vote>(bytes, codec::MESSAGE_BYTES_MAX).map_err(s)?.verify(domain, set).map_err(s),
        "certificate" => {
            codec::decode::<Certificate>(bytes, codec::MESSAGE_BYTES_MAX).map_err(s)?.verify(domain, set).map_err(s)
        }
        "message" => {
            Message::decode(bytes).map_err(s)?.verify(domain, set, taksa_consensus::Epochs::new(1_000)).map_err(s)
        }
        "sync" => {
            let request = codec::decode::<taksa_p2p::Request>(bytes, taksa_p2p::SYNC_REQUEST_BYTES_MAX);
            let response = codec::decode::<taksa_p2p::Response>(bytes, taksa_p2p::SYNC_RESPONSE_BYTES_MAX);
            if request.is_ok() || response.is_ok() {
                Ok(())
            } else {
                Err("neither a request nor a response".into())
            }
        }
        "rpc_params" => std::str::from_utf8(bytes).map(|_| ()).map_err(|e| e.to_string()),
        other => Err(format!("no target named {other}")),
    }
}
