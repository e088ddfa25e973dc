//! Validation and scoring: rejected gossip stops at the node that rejects it, costs the sender
//! score, and repeat offenders are disconnected and kept out.

use std::time::{Duration, Instant};

use taksa_consensus::tx::GOSSIP_BATCH_BYTES_MAX;
use taksa_p2p::{Topic, Verdict};

use crate::common::{peer, publish_until_seen, start_node, Seen};
use crate::hostile::Hostile;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_gossip_is_not_forwarded_and_repeat_offenders_are_banned() {
    // A line A - B - C: A and C may connect to their bootnode B only (a priority peer, which
    // needs no slot), so everything between them passes through B.
    let mut b = start_node(20, &[], 3).await;
    let mut a = start_node(21, &[&b], 0).await;
    let mut c = start_node(22, &[&b], 0).await;
    let mut b_seen = b.pump(|d| if d.starts_with(b"bad") { Verdict::Reject } else { Verdict::Accept }, |_| None);
    let mut c_seen = c.accept_all();
    let _a_seen = a.accept_all();
    eventually!("B to connect to A and C", 10, b.handle.peers().await.len() == 2);

    // The path works: what B accepts reaches C.
    publish_until_seen(&a.handle, Topic::Consensus, b"good-0", &mut c_seen).await;

    a.handle.publish(Topic::Consensus, b"bad-1".to_vec()).expect("queued");
    assert!(b_seen.wait_for(Duration::from_secs(5), |s| s.is_gossip(b"bad-1")).await);
    eventually!("A's score at B to drop", 5, peer(&b.handle, &a.id).await.map(|p| p.score) == Some(-10));
    // B handles A's messages in order, so once good-2 reaches C, bad-1 would have been ahead.
    publish_until_seen(&a.handle, Topic::Consensus, b"good-2", &mut c_seen).await;
    assert_eq!(c_seen.count_gossip(b"bad-1"), 0, "a rejected message was forwarded");

    for i in 3..=6 {
        a.handle.publish(Topic::Consensus, format!("bad-{i}").into_bytes()).expect("queued");
    }
    assert!(b_seen.wait_for(Duration::from_secs(5), |s| *s == Seen::Disconnected(a.id)).await);
    assert!(peer(&b.handle, &a.id).await.is_none());

    // A has no peer left and keeps re-dialing B (every 2 s); B keeps refusing.
    let until = Instant::now() + Duration::from_millis(2600);
    while Instant::now() < until {
        assert!(peer(&b.handle, &a.id).await.is_none(), "a banned peer got back in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b_seen.drain();
    let after_ban = b_seen.log.iter().rev().take_while(|s| **s != Seen::Disconnected(a.id));
    assert_eq!(after_ban.filter(|s| **s == Seen::Connected(a.id)).count(), 0, "B reported A connected again");
    // C is unaffected.
    assert!(peer(&b.handle, &c.id).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_transaction_gossip_is_rejected_before_the_node_sees_it() {
    let mut node = start_node(30, &[], 50).await;
    let mut seen = node.accept_all();
    let hostile = Hostile::start(31, &node.addr, Vec::new());
    let hostile_id = hostile.id.to_string();

    // The hostile peer's ordinary gossip does reach the node.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        hostile.publish("tx", b"small-0".to_vec());
        if seen.wait_for(Duration::from_millis(300), |s| s.is_gossip(b"small-0")).await {
            break;
        }
        assert!(Instant::now() < deadline, "the hostile peer's gossip never arrived");
    }
    let big = vec![7u8; GOSSIP_BATCH_BYTES_MAX + 1];
    hostile.publish("tx", big.clone());
    hostile.publish("tx", b"small-1".to_vec());
    // Messages from one peer are handled in order: once small-1 is here, big was dealt with.
    assert!(seen.wait_for(Duration::from_secs(5), |s| s.is_gossip(b"small-1")).await);
    assert_eq!(seen.count_gossip(&big), 0, "oversized gossip reached the node");
    let peers = node.handle.peers().await;
    let hostile_info = peers.iter().find(|p| p.peer.to_string() == hostile_id).expect("hostile still connected");
    assert_eq!(hostile_info.score, -10);
}
