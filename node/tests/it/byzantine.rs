//! Hostile peers against real validators: a libp2p peer in the test process joins a 4-validator
//! network and gossips garbage, forged and conflicting data (the consensus guide's test 7 with
//! real processes). The testnet's validator keys are public, so the peer can equivocate in a
//! validator's name: every honest node must then hold the evidence, and nothing forks.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use taksa_consensus::engine::Message;
use taksa_consensus::{Address, Domain, Hash, Keypair, Transaction, Vote, VoteKind};
use taksa_consensus::{Block, Header};
use taksa_node::devnet;
use taksa_p2p::{Config, FinalizedBlock, Handle, Request, Response, Topic};

use crate::support::{call, params};
use crate::testnet::{exclusive, Testnet};

const BLOCK_MS: u64 = 500;

async fn status(net: &Testnet, i: usize) -> Value {
    call(&net.client(i), "consensus_getStatus", params(&[])).await.expect("consensus_getStatus")
}

/// Waits until no node lists `peer` in `node_peers` (it was disconnected and banned).
async fn wait_until_no_node_lists(net: &Testnet, peer: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut listed = false;
        for i in 0..net.len() {
            let peers = call(&net.client(i), "node_peers", params(&[])).await.expect("node_peers");
            listed |= peers.as_array().into_iter().flatten().any(|p| p["peerId"] == json!(peer));
        }
        if !listed {
            return;
        }
        assert!(Instant::now() < deadline, "peer {peer} is still connected after {timeout:?}{}", net.logs(&[0]));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn evil_peer(net: &Testnet, genesis_hash: Hash) -> Handle {
    evil_peer_with(net, genesis_hash, None).await
}

/// A peer that answers every sync request with this block (at the height asked for), if given;
/// else it drops them.
async fn evil_peer_with(net: &Testnet, genesis_hash: Hash, lie: Option<Block>) -> Handle {
    let mut config = Config::new("127.0.0.1:0", devnet::TESTNET_CHAIN_ID, genesis_hash, [66; 32]);
    config.bootnodes = vec![net.p2p(0)];
    let (handle, mut events) = taksa_p2p::start(config).await.expect("evil peer starts");
    // It validates nothing: it drains its events so the swarm never waits on it.
    let drain = handle.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                taksa_p2p::Event::Gossip { id, from, .. } => drain.report(id, from, taksa_p2p::Verdict::Ignore),
                taksa_p2p::Event::Request { request, reply, .. } => {
                    let Some(block) = lie.clone() else { continue };
                    reply.send(match request {
                        Request::Status => {
                            let mut head = block.header.clone();
                            head.height = 1_000_000;
                            Response::Status { head, finalization: None }
                        }
                        Request::Blocks { from_height, .. } => {
                            let mut block = block.clone();
                            block.header.height = from_height;
                            Response::Blocks(vec![FinalizedBlock { block, finalization: None }])
                        }
                        Request::Block { .. } => Response::Block(None),
                    });
                }
                _ => {}
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while handle.peers().await.len() < 2 {
        assert!(Instant::now() < deadline, "the evil peer could not join the network");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Gossipsub meshes form on the heartbeat: give them a moment before publishing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_conflicting_and_garbage_gossip_is_rejected_and_equivocation_is_evidence_everywhere() {
    let _one = exclusive().await;
    let net = Testnet::start(4, 0, BLOCK_MS);
    net.wait_finalized(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await;
    let info = net.info(0).await.expect("info");
    let genesis = Hash::from_hex(info["genesisHash"].as_str().expect("genesisHash")).expect("hash");
    let domain = Domain { chain_id: devnet::TESTNET_CHAIN_ID.into(), genesis_hash: genesis, epoch: 0 };
    let evil = evil_peer(&net, genesis).await;

    // Validator 3's key is public: two notarize votes for different blocks in one view ahead.
    let view = status(&net, 0).await["view"].as_u64().expect("view") + 3;
    let v3 = devnet::testnet_validator_key(3);
    for block in [Hash([1; 32]), Hash([2; 32])] {
        let vote = Vote::sign(&domain, &v3, VoteKind::Notarize, view, Some(block));
        evil.publish(Topic::Consensus, Message::Vote(vote).encode()).expect("publish");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..4 {
        loop {
            let ev = call(&net.client(i), "consensus_getEvidence", params(&[])).await.expect("evidence");
            let list = ev.as_array().cloned().unwrap_or_default();
            if let Some(e) = list.first() {
                assert_eq!(e["view"].as_u64(), Some(view), "node {i}: {e}");
                assert_eq!(e["signer"], json!(Address(v3.public()).to_bech32("tks")), "node {i}: {e}");
                break;
            }
            assert!(Instant::now() < deadline, "node {i} has no evidence of the double vote{}", net.logs(&[i]));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Garbage, a bad signature, a non-validator, another chain, a forged transaction: each is
    // refused, counted and logged; the sender ends up disconnected and banned.
    let outsider = Keypair::from_seed(&[9; 32]);
    let other_chain = Domain { chain_id: "another-chain".into(), genesis_hash: genesis, epoch: 0 };
    let mut bad_sig = Vote::sign(&domain, &v3, VoteKind::Nullify, view + 1, None);
    bad_sig.signature.0[0] ^= 1;
    let mut forged_tx = Transaction {
        chain_id: devnet::TESTNET_CHAIN_ID.into(),
        from: Address(devnet::testnet_account(0).public()),
        to: Address(outsider.public()),
        amount: 5,
        fee: devnet::ACCOUNT_CREATION_FEE,
        nonce: 0,
        valid_until_height: None,
        memo: None,
        action: None,
    }
    .sign(&devnet::testnet_account(0), &genesis);
    forged_tx.tx.amount = 5_000_000;
    let bad: Vec<(Topic, Vec<u8>)> = vec![
        (Topic::Consensus, vec![0xff; 100]),
        (Topic::Consensus, Message::Vote(bad_sig).encode()),
        (Topic::Consensus, Message::Vote(Vote::sign(&domain, &outsider, VoteKind::Nullify, view, None)).encode()),
        (Topic::Consensus, Message::Vote(Vote::sign(&other_chain, &v3, VoteKind::Nullify, view + 2, None)).encode()),
        (Topic::Transactions, taksa_consensus::tx::encode_gossip_batch(&[forged_tx])),
        (Topic::Transactions, vec![1, 2, 3]),
    ];
    for (topic, data) in bad {
        evil.publish(topic, data).expect("publish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let evil_id = evil.local_peer_id().to_string();
    wait_until_no_node_lists(&net, &evil_id, Duration::from_secs(20)).await;
    let rejected = net.log(0).matches("rejected data from a peer").count()
        + net.log(1).matches("rejected data from a peer").count();
    assert!(rejected >= 3, "rejections were not logged ({rejected})");

    // The honest nodes kept finalizing one chain.
    let top = net.finalized(0).await;
    net.wait_finalized(&[0, 1, 2, 3], top + 3, Duration::from_secs(30)).await;
    let at = top + 3;
    for i in 1..4 {
        assert_eq!(net.hash_at(i, at).await, net.hash_at(0, at).await, "node {i} at {at}");
    }
    evil.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_lies_in_sync_is_refused_penalised_and_banned_while_the_chain_goes_on() {
    let _one = exclusive().await;
    let net = Testnet::start(4, 0, BLOCK_MS);
    net.wait_finalized(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await;
    let info = net.info(0).await.expect("info");
    let genesis = Hash::from_hex(info["genesisHash"].as_str().expect("genesisHash")).expect("hash");
    // It claims a far-ahead chain and serves a block that extends nothing we have.
    let head = net.finalized(0).await;
    let forged = Block {
        header: Header {
            chain_id: devnet::TESTNET_CHAIN_ID.into(),
            height: head + 1,
            view: 9_999,
            parent_hash: Hash([3; 32]),
            proposer: Address(devnet::testnet_validator_key(0).public()),
            timestamp_ms: 1,
            tx_root: Hash([0; 32]),
            evidence_root: taksa_consensus::block::evidence_root(&[]),
            state_root: Hash([0; 32]),
            validator_set_hash: Hash([0; 32]),
            parent_cert: None,
        },
        evidence: Vec::new(),
        txs: Vec::new(),
    };
    let liar = evil_peer_with(&net, genesis, Some(forged)).await;
    let liar_id = liar.local_peer_id().to_string();
    wait_until_no_node_lists(&net, &liar_id, Duration::from_secs(30)).await;
    let refused: usize =
        (0..4).map(|i| net.log(i).matches("status head above genesis without a finalization").count()).sum();
    assert!(refused >= 2, "the uncertified status was not refused and logged ({refused})");
    let top = net.finalized(0).await;
    net.wait_finalized(&[0, 1, 2, 3], top + 3, Duration::from_secs(30)).await;
    for i in 0..4 {
        let info = net.info(i).await.expect("info");
        assert_ne!(info["sync"]["targetHeight"], json!(1_000_000), "node {i} still believes the liar: {info}");
    }
    liar.shutdown().await;
}

/// A peer that relays honest node `honest`'s certified status truthfully but serves its blocks
/// only up to `last_served`, stripped of their finalizations, and then nothing: blocks that are
/// valid and final, which the syncing node cannot prove final.
async fn withholding_proxy(net: &Testnet, genesis_hash: Hash, honest: usize, last_served: u64) -> Handle {
    let mut config = Config::new("127.0.0.1:0", devnet::TESTNET_CHAIN_ID, genesis_hash, [67; 32]);
    config.bootnodes = vec![net.p2p(honest)];
    let source: taksa_p2p::PeerId = net.p2p(honest).split("/p2p/").nth(1).expect("a peer id").parse().expect("peer id");
    let (handle, mut events) = taksa_p2p::start(config).await.expect("proxy starts");
    let relay = handle.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                taksa_p2p::Event::Gossip { id, from, .. } => relay.report(id, from, taksa_p2p::Verdict::Ignore),
                taksa_p2p::Event::Request { request, reply, .. } => {
                    let relay = relay.clone();
                    tokio::spawn(async move {
                        let answer = match request {
                            Request::Blocks { from_height, .. } if from_height > last_served => {
                                Response::Blocks(Vec::new())
                            }
                            Request::Blocks { from_height, count } => {
                                let count = count.min(u32::try_from(last_served - from_height + 1).expect("small"));
                                match relay.request(&source, Request::Blocks { from_height, count }).await {
                                    Ok(Response::Blocks(blocks)) => Response::Blocks(
                                        blocks
                                            .into_iter()
                                            .map(|b| FinalizedBlock { block: b.block, finalization: None })
                                            .collect(),
                                    ),
                                    _ => return,
                                }
                            }
                            other => match relay.request(&source, other).await {
                                Ok(answer) => answer,
                                Err(_) => return,
                            },
                        };
                        reply.send(answer);
                    });
                }
                _ => {}
            }
        }
    });
    handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_far_behind_syncs_past_a_peer_that_serves_blocks_it_cannot_prove_final() {
    let _one = exclusive().await;
    let mut net = Testnet::start(4, 1, BLOCK_MS);
    net.wait_finalized(&[0, 1, 2, 3, 4], 70, Duration::from_secs(120)).await;
    let info = net.info(0).await.expect("info");
    let genesis = Hash::from_hex(info["genesisHash"].as_str().expect("genesisHash")).expect("hash");

    // The full node loses its data and, at first, may talk only to the withholding peer.
    let proxy = withholding_proxy(&net, genesis, 0, 40).await;
    let proxy_id = proxy.local_peer_id().to_string();
    let proxy_addr = proxy.listen_addrs().await.into_iter().next().expect("the proxy listens");
    net.wipe(4);
    net.reserve_ids(4, std::slice::from_ref(&proxy_id));
    let node0 = net.p2p(0);
    net.set_bootnodes(4, &[proxy_addr, node0]);
    net.restart(4);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !net.log(4).contains("sync from a peer stopped") {
        assert!(Instant::now() < deadline, "the full node never synced from the proxy {proxy_id}{}", net.logs(&[4]));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(net.finalized(4).await, 0, "blocks nothing proves final were committed");

    // Now honest peers too: the node catches up more than 64 blocks from them and penalises none.
    net.unreserve(4);
    let top = net.finalized(0).await;
    net.wait_finalized(&[4], top, Duration::from_secs(60)).await;
    assert_eq!(net.hash_at(4, top).await, net.hash_at(0, top).await);
    let peers = call(&net.client(4), "node_peers", params(&[])).await.expect("node_peers");
    for p in peers.as_array().into_iter().flatten().filter(|p| p["peerId"] != json!(proxy_id)) {
        assert!(p["score"].as_i64().unwrap_or(0) >= 0, "an honest peer was penalised: {p}{}", net.logs(&[4]));
    }
    assert!(!net.log(4).contains("refused blocks from a peer"), "{}", net.logs(&[4]));
    proxy.shutdown().await;
}
