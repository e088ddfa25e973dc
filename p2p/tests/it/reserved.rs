//! Reserved peers: a node restricted to a set of peers drops and refuses everyone else, which
//! partitions a network on demand, and lifting the restriction reconnects it by itself; bans
//! of the scoring stay in force either way.

use std::time::{Duration, Instant};

use taksa_p2p::{Config, Request, Topic, Verdict};

use crate::common::{genesis_hash, peer, publish_until_seen, start_config, start_node, Node, Seen, CHAIN_ID};

/// Asserts for `millis` that `node` never lists `other` among its peers.
async fn stays_out(node: &Node, other: &Node, millis: u64, what: &str) {
    let until = Instant::now() + Duration::from_millis(millis);
    while Instant::now() < until {
        assert!(peer(&node.handle, &other.id).await.is_none(), "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_peers_partition_a_network_and_lifting_them_reconnects_it() {
    let mut a = start_node(70, &[], 50).await;
    let mut b = start_node(71, &[&a], 50).await;
    let mut c = start_node(72, &[&a], 50).await;
    let mut a_seen = a.accept_all();
    let _b_seen = b.accept_all();
    let _c_seen = c.accept_all();
    eventually!("A, B and C to connect to each other", 15, {
        let mut all = true;
        for node in [&a, &b, &c] {
            all &= node.handle.peers().await.len() == 2;
        }
        all
    });
    publish_until_seen(&c.handle, Topic::Transactions, b"before", &mut a_seen).await;

    a.handle.set_reserved(Some(vec![b.id])).expect("queued");
    eventually!("A to drop C", 2, peer(&a.handle, &c.id).await.is_none());
    assert!(peer(&a.handle, &b.id).await.is_some(), "A dropped its reserved peer");
    // C dials A itself to ask; A refuses the connection.
    assert!(c.handle.request(&a.id, Request::Status).await.is_err(), "C got through to A");
    stays_out(&a, &c, 500, "C reconnected to A").await;

    // B is not restricted: C's gossip still reaches A, but only through B.
    publish_until_seen(&c.handle, Topic::Transactions, b"relayed", &mut a_seen).await;
    let from = a_seen.log.iter().rev().find_map(|s| match s {
        Seen::Gossip { from, data, .. } if data == b"relayed" => Some(*from),
        _ => None,
    });
    assert_eq!(from, Some(b.id), "A heard C's gossip from someone other than B");

    // B restricts itself to A too: C is cut off. With no peer left, C re-dials its bootnode A
    // every 2 s and is refused every time.
    b.handle.set_reserved(Some(vec![a.id])).expect("queued");
    eventually!("B to drop C", 2, peer(&b.handle, &c.id).await.is_none());
    let until = Instant::now() + Duration::from_millis(2600);
    while Instant::now() < until {
        // Publishing with no peer is not an error; it just goes nowhere.
        c.handle.publish(Topic::Transactions, b"cut off".to_vec()).expect("queued");
        assert!(peer(&a.handle, &c.id).await.is_none(), "C got back to A");
        assert!(peer(&b.handle, &c.id).await.is_none(), "C got back to B");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(a_seen.count_gossip(b"cut off"), 0, "gossip crossed the partition");
    let since_drop = a_seen.log.iter().rev().take_while(|s| **s != Seen::Disconnected(c.id));
    assert_eq!(since_drop.filter(|s| **s == Seen::Connected(c.id)).count(), 0, "A reported C connected again");

    a.handle.set_reserved(None).expect("queued");
    b.handle.set_reserved(None).expect("queued");
    eventually!("A and C to reconnect", 10, peer(&a.handle, &c.id).await.is_some());
    publish_until_seen(&c.handle, Topic::Transactions, b"after", &mut a_seen).await;
    eventually!("B and C to reconnect", 10, peer(&b.handle, &c.id).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_peers_in_the_config_apply_from_the_start_to_both_directions() {
    let kept = start_node(73, &[], 50).await;
    let other = start_node(74, &[], 50).await;
    let mut config = Config::new("127.0.0.1:0", CHAIN_ID, genesis_hash(), [75; 32]);
    // Both are bootnodes; only the reserved one is dialed.
    config.bootnodes = vec![kept.addr.clone(), other.addr.clone()];
    config.reserved = Some(vec![kept.id]);
    let node = start_config(config).await;
    eventually!("the node to connect to its reserved peer", 10, peer(&node.handle, &kept.id).await.is_some());

    // A third node that knows only our node keeps dialing it (it has no peer) and is refused.
    let stranger = start_node(76, &[&node], 50).await;
    stays_out(&node, &stranger, 2600, "a non-reserved peer got in").await;
    assert!(peer(&node.handle, &other.id).await.is_none(), "a non-reserved bootnode was dialed");
    assert!(other.handle.peers().await.is_empty(), "a non-reserved bootnode was dialed");
    assert!(stranger.handle.peers().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banned_peer_stays_out_when_reserved_peers_are_set_and_lifted() {
    let mut judge = start_node(77, &[], 50).await;
    let mut offender = start_node(78, &[&judge], 50).await;
    let mut seen = judge.pump(|d| if d.starts_with(b"bad") { Verdict::Reject } else { Verdict::Accept }, |_| None);
    let _offender_seen = offender.accept_all();
    publish_until_seen(&offender.handle, Topic::Consensus, b"good", &mut seen).await;
    for i in 1..=5 {
        offender.handle.publish(Topic::Consensus, format!("bad-{i}").into_bytes()).expect("queued");
    }
    assert!(seen.wait_for(Duration::from_secs(5), |s| *s == Seen::Disconnected(offender.id)).await);

    // Reserving the banned peer does not let it in, and lifting the set dials everyone known
    // except it; it keeps re-dialing (it has no peer left) and the ban keeps refusing it.
    judge.handle.set_reserved(Some(vec![offender.id])).expect("queued");
    stays_out(&judge, &offender, 1000, "reserving a banned peer let it in").await;
    judge.handle.set_reserved(None).expect("queued");
    stays_out(&judge, &offender, 2600, "lifting reserved peers let a banned peer in").await;
}
