//! Eclipse resistance: fresh identities that flood a node's inbound slots cannot keep it from
//! its priority peers, and one address gets only its share of the inbound slots.

use std::time::{Duration, Instant};

use taksa_p2p::Config;

use crate::common::{genesis_hash, peer, start_at, start_config, start_node, Node, Seen, CHAIN_ID};
use crate::hostile::Hostile;

/// Identities an attacker mints for the flood.
const FLOOD_IDENTITIES: u8 = 50;

async fn inbound_count(node: &Node) -> usize {
    node.handle.peers().await.iter().filter(|p| p.inbound).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_flooded_by_fresh_identities_still_reaches_its_bootnode_and_priority_peers() {
    let boot = start_node(80, &[], 50).await;
    let boot_listen = boot.addr.split("/p2p/").next().expect("an address").to_string();
    // A priority peer that will dial in once the flood is in: learn its id, then let it go.
    let friend_id = {
        let friend = start_node(81, &[], 50).await;
        friend.handle.shutdown().await;
        friend.id
    };
    let mut config = Config::new("127.0.0.1:0", CHAIN_ID, genesis_hash(), [82; 32]);
    config.bootnodes = vec![boot.addr.clone()];
    config.priority_peers = vec![friend_id];
    // Small budgets, and not one outbound slot: only priority peers can be dialed.
    config.inbound_connections_max = 4;
    config.outbound_connections_max = 0;
    let mut node = start_config(config).await;
    let mut seen = node.accept_all();
    assert!(seen.wait_for(Duration::from_secs(10), |s| *s == Seen::Connected(boot.id)).await);

    let _flood: Vec<Hostile> = (0..FLOOD_IDENTITIES).map(|i| Hostile::start(100 + i, &node.addr, Vec::new())).collect();
    eventually!("the flood to take every inbound slot", 15, inbound_count(&node).await == 4);
    assert!(peer(&node.handle, &boot.id).await.is_some(), "the flood pushed the bootnode out");

    // The bootnode restarts while every slot is taken by strangers: the node dials it again.
    boot.handle.shutdown().await;
    assert!(seen.wait_for(Duration::from_secs(5), |s| *s == Seen::Disconnected(boot.id)).await);
    let boot = start_at(80, &boot_listen, Vec::new(), 50).await;
    eventually!("the node to reach its bootnode again", 15, peer(&node.handle, &boot.id).await.is_some());

    // A listed priority peer dialing in is let in although the inbound slots are full.
    let friend = start_node(81, &[&node], 50).await;
    assert_eq!(friend.id, friend_id, "same seed, same identity");
    eventually!("the priority peer to get in", 15, peer(&node.handle, &friend_id).await.is_some());

    let peers = node.handle.peers().await;
    let strangers = peers.iter().filter(|p| p.peer != boot.id && p.peer != friend_id).count();
    assert_eq!(strangers, 4, "strangers beyond the inbound budget: {peers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_peers_from_one_address_beyond_its_cap_are_refused() {
    let mut config = Config::new("127.0.0.1:0", CHAIN_ID, genesis_hash(), [85; 32]);
    config.inbound_peers_per_ip_max = 2;
    // Loopback is exempt by default (local testnets); the cap is what is tested here.
    config.limit_loopback = true;
    // No outbound slot: the node dials nobody it discovers, so every peer it has came in.
    config.outbound_connections_max = 0;
    let mut node = start_config(config).await;
    let mut seen = node.accept_all();
    let mut others = Vec::new();
    for seed in 86..90 {
        others.push(start_node(seed, &[&node], 50).await);
    }
    eventually!("peers to come in", 10, inbound_count(&node).await >= 2);

    // The two refused have no peer, so they re-dial every 2 s; each time they are refused.
    let until = Instant::now() + Duration::from_millis(2600);
    while Instant::now() < until {
        let peers = node.handle.peers().await;
        assert!(peers.len() <= 2, "more than two peers from 127.0.0.1: {peers:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen.drain();
    let connected: Vec<_> = seen.log.iter().filter(|s| matches!(s, Seen::Connected(_))).collect();
    assert_eq!(connected.len(), 2, "{connected:?}");
    let mut lonely = 0;
    for other in &others {
        lonely += usize::from(other.handle.peers().await.is_empty());
    }
    assert_eq!(lonely, 2, "the refused peers found another way in");
}
