//! Gossip between real nodes: delivery through discovered peers, exactly once, never back to
//! the publisher.

use std::time::Duration;

use taksa_p2p::Topic;

use crate::common::{peer, publish_until_seen, start_node, Seen};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_reaches_every_peer_exactly_once_and_not_its_publisher() {
    let mut a = start_node(10, &[], 50).await;
    let mut b = start_node(11, &[&a], 50).await;
    let mut c = start_node(12, &[&a], 50).await;
    let mut a_seen = a.accept_all();
    let mut b_seen = b.accept_all();
    let mut c_seen = c.accept_all();

    // C was told only of A: it must find B through discovery.
    eventually!("C to discover and connect to B", 15, peer(&c.handle, &b.id).await.is_some());

    let data = b"transfer 5 to bob".to_vec();
    publish_until_seen(&a.handle, Topic::Transactions, &data, &mut b_seen).await;
    assert!(c_seen.wait_for(Duration::from_secs(5), |s| s.is_gossip(&data)).await, "C never got the message");
    // Both receivers accepted and forwarded it; give the copies time to arrive and be dropped.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(b_seen.count_gossip(&data), 1);
    assert_eq!(c_seen.count_gossip(&data), 1);
    assert_eq!(a_seen.count_gossip(&data), 0, "the publisher got its own message back");

    // `from` is the neighbour that handed it over: A itself, or C if A's first copy went to C
    // before A knew B's subscriptions.
    let (topic, from) = b_seen
        .log
        .iter()
        .find_map(|s| match s {
            Seen::Gossip { topic, from, data: d } if *d == data => Some((*topic, *from)),
            _ => None,
        })
        .expect("B saw it");
    assert_eq!(topic, Topic::Transactions);
    assert!(from == a.id || from == c.id, "{from}");

    // The consensus topic is separate and works the same way.
    let vote = b"a vote".to_vec();
    publish_until_seen(&c.handle, Topic::Consensus, &vote, &mut a_seen).await;
    assert!(a_seen.log.iter().any(|s| matches!(s, Seen::Gossip { topic: Topic::Consensus, .. })));
    assert_eq!(c_seen.count_gossip(&vote), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_with_no_peers_or_twice_is_not_an_error() {
    let mut lonely = start_node(13, &[], 50).await;
    let mut seen = lonely.accept_all();
    lonely.handle.publish(Topic::Transactions, b"nobody listens".to_vec()).expect("queued");
    lonely.handle.publish(Topic::Transactions, b"nobody listens".to_vec()).expect("queued");
    let too_big = vec![0u8; taksa_consensus::tx::GOSSIP_BATCH_BYTES_MAX + 1];
    assert!(matches!(lonely.handle.publish(Topic::Transactions, too_big), Err(taksa_p2p::Error::TooLarge { .. })));
    // The task is still alive and answering.
    assert_eq!(lonely.handle.listen_addrs().await.len(), 1);
    assert!(!seen.wait_for(Duration::from_millis(300), |s| matches!(s, Seen::Gossip { .. })).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bytes_published_again_reach_a_peer_that_joined_after_the_first_time() {
    // Consensus recovery re-sends identical votes and certificates at each view timeout; a
    // peer that was away the first time must get them then.
    let a = start_node(14, &[], 50).await;
    let mut b = start_node(15, &[&a], 50).await;
    let mut b_seen = b.accept_all();
    let data = b"a certificate a late peer needs".to_vec();
    publish_until_seen(&a.handle, Topic::Consensus, &data, &mut b_seen).await;

    let mut c = start_node(16, &[&a], 50).await;
    let mut c_seen = c.accept_all();
    eventually!("C to connect to A", 15, peer(&c.handle, &a.id).await.is_some());
    // Wait out the duplicate window and let C's subscription reach A, then re-send once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.handle.publish(Topic::Consensus, data.clone()).expect("queued");
    assert!(
        c_seen.wait_for(Duration::from_secs(5), |s| s.is_gossip(&data)).await,
        "the re-sent message never reached C"
    );
}
