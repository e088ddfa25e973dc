//! Fixtures for the fuzz targets: a fixed four-validator network, valid instances of everything a
//! peer or a client sends (the seeds the fuzzer starts from), and the canonical-encoding check.
//!
//! Bird's-eye view:
//! - `fuzz_targets/`: one libFuzzer target per decoder a peer or a client reaches: `tx`,
//!   `block`, `vote`, `certificate`, `message` (consensus gossip), `sync` (request-response) and
//!   `rpc_params` (what the JSON-RPC parameters are parsed with). Each asserts that nothing
//!   panics and that whatever decodes re-encodes to exactly the bytes it came from (the codec is
//!   canonical: fixed-width integers, trailing bytes refused), then runs the checks the node
//!   runs next on the decoded value, which must not panic either.
//! - `src/bin/seeds.rs`: writes [`seeds`] as files, one folder per target.
//! - `scripts/fuzz.sh` at the root builds and runs every target with libFuzzer's allocation
//!   limits set from the decode budgets, so an allocation past them fails the run.

#![forbid(unsafe_code)]

use std::sync::OnceLock;

use taksa_consensus::engine::Message;
use taksa_consensus::{
    block, codec, Address, Block, Certificate, Domain, Hash, Header, Keypair, SignedTransaction, Transaction,
    ValidatorSet, Vote, VoteKind,
};
use taksa_p2p::{FinalizedBlock, Request, Response};

/// The chain id of the fuzzing network.
pub const CHAIN_ID: &str = "taksa-fuzz";
/// The address prefix of the fuzzing network.
pub const HRP: &str = "tks";
/// The genesis hash of the fuzzing network.
pub const GENESIS_HASH: Hash = Hash([7; 32]);
/// The fee floor of the fuzzing network, in base units.
pub const FEE_FLOOR: u128 = 1;

/// A network of four validators (seeds 1..=4): the keys, the set and the signing domain.
pub struct Net {
    /// The validators' keys, in set order.
    pub keys: Vec<Keypair>,
    /// The validator set.
    pub validators: ValidatorSet,
    /// What every vote commits to.
    pub domain: Domain,
}

/// The one network, built once per process (deriving keys on every input would slow the fuzzer).
pub fn net() -> &'static Net {
    static NET: OnceLock<Net> = OnceLock::new();
    NET.get_or_init(|| {
        let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_seed(&[i; 32])).collect();
        let validators = ValidatorSet::new(keys.iter().map(|k| Address(k.public())).collect());
        let domain = Domain { chain_id: CHAIN_ID.into(), genesis_hash: GENESIS_HASH, epoch: 0 };
        Net { keys, validators, domain }
    })
}

/// Panics unless `reencoded` equals `bytes`: a value that decodes has exactly one encoding, the
/// bytes it came from. Reports lengths and the first differing offset rather than megabytes.
pub fn assert_canonical(what: &str, bytes: &[u8], reencoded: &[u8]) {
    if bytes != reencoded {
        let at = bytes.iter().zip(reencoded).position(|(a, b)| a != b).unwrap_or(bytes.len().min(reencoded.len()));
        panic!(
            "{what}: {} bytes decoded but re-encode to {} bytes, first difference at offset {at}",
            bytes.len(),
            reencoded.len()
        );
    }
}

/// A transfer of 1000 base units from validator key `from` to the next key, signed for this
/// network.
pub fn transfer(net: &Net, from: usize, nonce: u64, memo: Option<&str>) -> SignedTransaction {
    let key = &net.keys[from % net.keys.len()];
    let to = &net.keys[(from + 1) % net.keys.len()];
    let tx = Transaction {
        chain_id: CHAIN_ID.into(),
        from: Address(key.public()),
        to: Address(to.public()),
        amount: 1000,
        fee: FEE_FLOOR,
        nonce,
        valid_until_height: memo.map(|_| 1000),
        memo: memo.map(str::to_owned),
        action: None,
    };
    tx.sign(key, &GENESIS_HASH)
}

/// A block of `view` at `height` by the view's leader, on the block `parent_cert` notarizes (or
/// on genesis), carrying `txs` with a matching `tx_root`.
pub fn block_at(
    net: &Net,
    view: u64,
    height: u64,
    parent_cert: Option<Certificate>,
    txs: Vec<SignedTransaction>,
) -> Block {
    let hashes: Vec<Hash> = txs.iter().map(SignedTransaction::hash).collect();
    let header = Header {
        chain_id: CHAIN_ID.into(),
        height,
        view,
        parent_hash: parent_cert.as_ref().and_then(|c| c.block_hash).unwrap_or(GENESIS_HASH),
        proposer: net.validators.leader(view),
        timestamp_ms: 1_700_000_000_000 + view * 1000,
        tx_root: block::tx_root(&hashes),
        evidence_root: block::evidence_root(&[]),
        state_root: Hash([3; 32]),
        validator_set_hash: net.validators.hash(),
        parent_cert,
    };
    Block { header, evidence: Vec::new(), txs }
}

/// A certificate of `kind` for (`view`, `block_hash`) signed by the first `signers` validators.
pub fn certificate(net: &Net, kind: VoteKind, view: u64, block_hash: Option<Hash>, signers: usize) -> Certificate {
    let votes: Vec<Vote> =
        net.keys.iter().take(signers).map(|k| Vote::sign(&net.domain, k, kind, view, block_hash)).collect();
    Certificate::from_votes(&net.validators, 0, kind, view, block_hash, &votes)
}

/// `block` proposed by its view's leader, with the leader's notarize vote.
pub fn proposal(net: &Net, block: Block) -> Message {
    let view = block.header.view;
    let leader = net.validators.leader(view);
    let key = net.keys.iter().find(|k| Address(k.public()) == leader).unwrap_or(&net.keys[0]);
    let leader_vote = Vote::sign(&net.domain, key, VoteKind::Notarize, view, Some(block.hash()));
    Message::Proposal { block, leader_vote }
}

/// Valid inputs for every target, by target name: encodings for the binary decoders, JSON
/// parameter texts (and bare strings) for `rpc_params`.
pub fn seeds() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let net = net();
    let t0 = transfer(net, 0, 0, None);
    let t1 = transfer(net, 1, 7, Some("seed memo"));
    let b1 = block_at(net, 1, 1, None, Vec::new());
    let n1 = certificate(net, VoteKind::Notarize, 1, Some(b1.hash()), 3);
    let b2 = block_at(net, 2, 2, Some(n1.clone()), vec![t0.clone(), t1.clone()]);
    let f1 = certificate(net, VoteKind::Finalize, 1, Some(b1.hash()), 3);
    let f2 = certificate(net, VoteKind::Finalize, 2, Some(b2.hash()), 4);
    let null3 = certificate(net, VoteKind::Nullify, 3, None, 4);
    let votes = [
        Vote::sign(&net.domain, &net.keys[0], VoteKind::Notarize, 2, Some(b2.hash())),
        Vote::sign(&net.domain, &net.keys[1], VoteKind::Nullify, 3, None),
        Vote::sign(&net.domain, &net.keys[2], VoteKind::Finalize, 2, Some(b2.hash())),
    ];
    let requests = [Request::Status, Request::Blocks { from_height: 1, count: 64 }, Request::Block { hash: b2.hash() }];
    let responses = [
        Response::Status { head: b2.header.clone(), finalization: Some(f2.clone()) },
        Response::Blocks(vec![
            FinalizedBlock { block: b1.clone(), finalization: Some(f1) },
            FinalizedBlock { block: b2.clone(), finalization: None },
        ]),
        Response::Block(Some(b2.clone())),
        Response::Block(None),
    ];
    let address = Address(net.keys[0].public()).to_bech32(HRP);
    let tx_hex = hex::encode(t1.encode());
    let rpc = [
        format!("[\"{address}\"]"),
        format!(
            "{{\"address\":\"{address}\",\"options\":{{\"limit\":5,\"order\":\"oldest\",\"direction\":\"sent\"}}}}"
        ),
        format!("[\"{}\"]", b2.hash().to_hex()),
        format!("[\"{tx_hex}\"]"),
        format!("{{\"tx\":\"0x{tx_hex}\"}}"),
        "[\"12345\", 7, null]".to_owned(),
        format!("[\"{}\"]", u128::MAX),
        address.to_uppercase(),
        b1.hash().to_hex(),
    ];
    vec![
        ("tx", vec![t0.encode(), t1.encode()]),
        ("block", vec![b1.encode(), b2.encode()]),
        ("vote", votes.iter().map(codec::encode).collect()),
        ("certificate", vec![n1.encode(), f2.encode(), null3.encode()]),
        (
            "message",
            vec![
                proposal(net, b1).encode(),
                proposal(net, b2).encode(),
                Message::Vote(votes[0].clone()).encode(),
                Message::Certificate(null3).encode(),
            ],
        ),
        ("sync", requests.iter().map(codec::encode).chain(responses.iter().map(codec::encode)).collect()),
        ("rpc_params", rpc.into_iter().map(String::into_bytes).collect()),
    ]
}
