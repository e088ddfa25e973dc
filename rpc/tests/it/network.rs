//! The validator-network methods (`node_info`, `node_peers`, `consensus_getStatus`,
//! `consensus_getEvidence`) and `chain_getInfo`'s sync progress, over HTTP and WebSocket.

use jsonrpsee::core::client::ClientT;
use serde_json::{json, Value};
use taksa_consensus::{Address, Evidence, Hash, Signature, Vote, VoteKind};

use crate::fake::{self, addr, validator, Fake, HRP, PEER_ID, VERSION, VIEW};
use crate::{assert_alive, assert_error, call, http, serve, serve_fake, ws};

fn bech(a: &Address) -> String {
    a.to_bech32(HRP)
}

/// Rebuilds a vote from its JSON, so a test can check the signature a client would check.
fn vote_from_json(v: &Value) -> Vote {
    let kind = match v["kind"].as_str().expect("kind") {
        "notarize" => VoteKind::Notarize,
        "nullify" => VoteKind::Nullify,
        "finalize" => VoteKind::Finalize,
        other => panic!("unknown vote kind {other}"),
    };
    let block_hash = v["blockHash"].as_str().map(|h| Hash::from_hex(h).expect("blockHash is a hash"));
    let mut signature = [0u8; 64];
    let sig_hex = v["signature"].as_str().and_then(|s| s.strip_prefix("0x")).expect("0x signature");
    hex::decode_to_slice(sig_hex, &mut signature).expect("128 hex digits");
    Vote {
        epoch: v["epoch"].as_u64().expect("epoch"),
        kind,
        view: v["view"].as_u64().expect("view"),
        block_hash,
        signer: Address::parse(v["signer"].as_str().expect("signer"), HRP).expect("bech32 signer"),
        signature: Signature(signature),
    }
}

async fn node_info_names_the_validator_and_its_addresses(c: &impl ClientT) {
    let info: Value = call(c, "node_info", json!([])).await.expect("node_info");
    assert_eq!(
        info,
        json!({
            "peerId": PEER_ID,
            "listenAddrs": [format!("/ip4/127.0.0.1/tcp/30333/p2p/{PEER_ID}")],
            "role": "validator",
            "validatorAddress": bech(&addr(&validator())),
            "version": VERSION,
        })
    );
}

async fn node_peers_lists_each_connection(c: &impl ClientT) {
    let peers: Value = call(c, "node_peers", json!([])).await.expect("node_peers");
    assert_eq!(
        peers,
        json!([
            {"peerId": "12D3KooWA", "address": "/ip4/10.0.0.2/tcp/30333", "inbound": false, "score": 40,
             "agent": "taksa/0.1.0", "connectedMs": 61_000},
            {"peerId": "12D3KooWB", "address": "/ip4/10.0.0.3/tcp/51012", "inbound": true, "score": -25,
             "agent": null, "connectedMs": 1_500},
        ])
    );
    let health: Value = call(c, "node_health", json!([])).await.expect("health");
    assert_eq!(health["peers"], 2, "node_health counts the same peers");
}

async fn consensus_status_reports_view_leader_and_finality(c: &impl ClientT) {
    let head = Fake::new().blocks[3].header.clone();
    let set = fake::validator_set();
    let s: Value = call(c, "consensus_getStatus", json!([])).await.expect("consensus_getStatus");
    assert_eq!(
        s,
        json!({
            "view": VIEW, "leader": bech(&set.leader(VIEW)), "isValidator": true,
            "finalizedHeight": 3, "finalizedView": head.view, "finalizedHash": head.hash().to_hex(),
            "notarizedView": VIEW - 3, "failedViews": 2, "evidenceCount": 3,
            "validators": 1, "quorum": 1,
        })
    );
}

async fn evidence_is_newest_first_and_its_signatures_verify(c: &impl ClientT) {
    let expected = fake::evidence();
    let all: Vec<Value> = call(c, "consensus_getEvidence", json!([])).await.expect("default limit");
    assert_eq!(all.len(), expected.len());
    let views: Vec<u64> = all.iter().map(|e| e["view"].as_u64().expect("view")).collect();
    assert_eq!(views, [9, 5, 2], "newest first");
    let first = &all[0];
    let e0 = &expected[0];
    assert_eq!(first["signer"], bech(&addr(&validator())));
    assert_eq!(
        first["a"],
        json!({"epoch": 0, "kind": "notarize", "view": 9, "blockHash": Hash([0xa1; 32]).to_hex(),
               "signer": bech(&e0.a.signer), "signature": e0.a.signature.to_hex()})
    );
    assert_eq!(all[1]["a"]["kind"], "nullify");
    assert_eq!(all[1]["a"]["blockHash"], Value::Null, "a nullify vote names no block");
    assert_eq!(all[1]["b"]["kind"], "finalize");
    for (item, original) in all.iter().zip(&expected) {
        let rebuilt = Evidence { a: vote_from_json(&item["a"]), b: vote_from_json(&item["b"]) };
        assert_eq!(&rebuilt, original, "the JSON carries every field of both votes");
        rebuilt.verify(&fake::domain(), &fake::validator_set()).expect("evidence from JSON verifies");
    }
    let one: Vec<Value> = call(c, "consensus_getEvidence", json!([1])).await.expect("limit by position");
    assert_eq!(one, all[..1]);
    let two: Vec<Value> = call(c, "consensus_getEvidence", json!({"limit": 2})).await.expect("limit by name");
    assert_eq!(two, all[..2]);
    let max: Vec<Value> = call(c, "consensus_getEvidence", json!([1000])).await.expect("the maximum is allowed");
    assert_eq!(max, all);
    let null: Vec<Value> = call(c, "consensus_getEvidence", json!({"limit": null})).await.expect("null is default");
    assert_eq!(null, all);
}

async fn bad_params_of_network_methods_are_invalid_params(c: &impl ClientT) {
    for limit in [json!(1001), json!(0), json!(-1), json!(2.5), json!("10"), json!(u64::MAX)] {
        let outcome = call::<Value>(c, "consensus_getEvidence", json!([limit])).await;
        let d = assert_error(outcome, -32602, "invalid_params");
        assert_eq!((d["param"].as_str(), d["limitMax"].as_u64()), (Some("limit"), Some(1000)), "{limit}");
    }
    let named = call::<Value>(c, "consensus_getEvidence", json!({"limit": 5000})).await;
    assert_error(named, -32602, "invalid_params");
    let typo = call::<Value>(c, "consensus_getEvidence", json!({"limt": 5})).await;
    assert_eq!(assert_error(typo, -32602, "invalid_params")["expected"], json!(["limit"]));
    assert_error(call::<Value>(c, "consensus_getEvidence", json!([1, 2])).await, -32602, "invalid_params");
    for method in ["node_info", "node_peers", "consensus_getStatus"] {
        assert_error(call::<Value>(c, method, json!([1])).await, -32602, "invalid_params");
        assert_error(call::<Value>(c, method, json!({"verbose": true})).await, -32602, "invalid_params");
    }
    assert_alive(c).await;
}

async fn chain_info_adds_only_sync_and_the_creation_fee_to_its_fields(c: &impl ClientT) {
    let info: Value = call(c, "chain_getInfo", json!([])).await.expect("chain_getInfo");
    let mut keys: Vec<&str> = info.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    // Every field clients read before sync progress existed is still there, unchanged in name.
    let mut expected = vec![
        "chainId",
        "genesisHash",
        "addressHrp",
        "headHeight",
        "headHash",
        "finalizedHeight",
        "finalizedHash",
        "validators",
        "blockTimeMs",
        "feeFloor",
        "accountCreationFee",
        "tokenSymbol",
        "tokenDecimals",
        "sync",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(info["sync"], json!({"syncing": false, "targetHeight": null, "blocksPerSecond": null}));
}

async fn network_methods_answer(c: &impl ClientT) {
    node_info_names_the_validator_and_its_addresses(c).await;
    node_peers_lists_each_connection(c).await;
    consensus_status_reports_view_leader_and_finality(c).await;
    evidence_is_newest_first_and_its_signatures_verify(c).await;
    bad_params_of_network_methods_are_invalid_params(c).await;
    chain_info_adds_only_sync_and_the_creation_fee_to_its_fields(c).await;
}

#[tokio::test]
async fn network_methods_answer_over_http() {
    let server = serve().await;
    network_methods_answer(&http(&server)).await;
}

#[tokio::test]
async fn network_methods_answer_over_websocket() {
    let server = serve().await;
    network_methods_answer(&ws(&server).await).await;
}

async fn full_node_without_p2p_reports_no_peer_id_and_its_sync_progress(c: &impl ClientT) {
    let info: Value = call(c, "node_info", json!([])).await.expect("node_info");
    assert_eq!(
        info,
        json!({"peerId": null, "listenAddrs": [], "role": "full", "validatorAddress": null, "version": VERSION})
    );
    let peers: Value = call(c, "node_peers", json!([])).await.expect("node_peers");
    assert_eq!(peers, json!([]));
    let status: Value = call(c, "consensus_getStatus", json!([])).await.expect("status");
    assert_eq!((status["isValidator"].as_bool(), status["evidenceCount"].as_u64()), (Some(false), Some(0)));
    let evidence: Value = call(c, "consensus_getEvidence", json!([])).await.expect("evidence");
    assert_eq!(evidence, json!([]));
    let chain: Value = call(c, "chain_getInfo", json!([])).await.expect("chain_getInfo");
    assert_eq!(chain["sync"], json!({"syncing": true, "targetHeight": 40, "blocksPerSecond": 12.5}));
    let health: Value = call(c, "node_health", json!([])).await.expect("health");
    assert_eq!((health["syncing"].as_bool(), health["peers"].as_u64()), (Some(true), Some(0)));
}

#[tokio::test]
async fn full_node_without_p2p_over_http() {
    let server = serve_fake(Fake::syncing_full_node()).await;
    full_node_without_p2p_reports_no_peer_id_and_its_sync_progress(&http(&server)).await;
}

#[tokio::test]
async fn full_node_without_p2p_over_websocket() {
    let server = serve_fake(Fake::syncing_full_node()).await;
    full_node_without_p2p_reports_no_peer_id_and_its_sync_progress(&ws(&server).await).await;
}

#[test]
fn evidence_fixture_is_real_signed_equivocation() {
    // Guards the fixture: every piece must pass the consensus crate's own check.
    let (domain, set) = (fake::domain(), fake::validator_set());
    for e in fake::evidence() {
        e.verify(&domain, &set).expect("conflicting votes by a validator");
    }
}
