//! Gossip that costs its senders nothing and the node much: replays of a valid payload under
//! fresh send stamps, and transaction floods that would crowd out consensus messages.

use std::time::{Duration, Instant};

use taksa_p2p::{Event, Topic, Verdict, TRANSACTIONS_QUEUE_MAX};
use tokio::sync::mpsc;

use crate::common::{start_node, Pump};
use crate::hostile::{Hostile, FLOOD_MESSAGES_MAX};

/// How long to wait for one message to arrive.
const ARRIVAL: Duration = Duration::from_millis(300);
/// The payload a hostile peer publishes until it is heard: right after connecting, it may not
/// know our subscriptions yet.
const WARM_UP: &[u8] = b"warm-up";

async fn heard_in(pump: &mut Pump, payload: &[u8]) -> bool {
    pump.wait_for(ARRIVAL, |s| s.is_gossip(payload)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_replayed_under_fresh_stamps_reaches_the_node_once_per_window() {
    let mut node = start_node(95, &[], 50).await;
    let mut seen = node.accept_all();
    let hostile = Hostile::start(96, &node.addr, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    for stamp in 1_000_000.. {
        hostile.publish_stamped("consensus", WARM_UP.to_vec(), stamp);
        if heard_in(&mut seen, WARM_UP).await {
            break;
        }
        assert!(Instant::now() < deadline, "the hostile peer's gossip never arrived");
    }

    // 60 copies of one payload over 3 s, each a new message to gossipsub (a new stamp).
    let payload = b"a valid vote, replayed".to_vec();
    let started = Instant::now();
    for stamp in 1..=60 {
        hostile.publish_stamped("consensus", payload.clone(), stamp);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let span = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = seen.count_gossip(&payload);
    // One per 750 ms window at most, counting the window the first copy opened.
    let windows = usize::try_from(span.as_millis() / 750).expect("small") + 1;
    assert!((1..=windows).contains(&delivered), "{delivered} copies in {span:?} reached the node");

    // The honest re-send a view timeout later still gets through, and nobody was penalised.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    hostile.publish_stamped("consensus", payload.clone(), 1000);
    assert!(heard_in(&mut seen, &payload).await, "a re-send after the window was suppressed");
    let hostile_id = hostile.id.to_string();
    let peers = node.handle.peers().await;
    let info = peers.iter().find(|p| p.peer.to_string() == hostile_id).expect("the replayer is still connected");
    assert_eq!(info.score, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_flood_past_the_queue_does_not_keep_consensus_from_the_node() {
    let mut node = start_node(97, &[], 50).await;
    // A node busy with transactions: 20 ms each, so the flood stays queued for the whole test.
    let mut events = node.take_events();
    let handle = node.handle.clone();
    let (consensus_tx, mut consensus) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let Event::Gossip { topic, from, id, data } = event {
                if topic == Topic::Transactions {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    handle.report(id, from, Verdict::Ignore);
                } else {
                    handle.report(id, from, Verdict::Accept);
                    let _ = consensus_tx.send(data);
                }
            }
        }
    });
    let hostile = Hostile::start(98, &node.addr, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    for stamp in 1_000_000.. {
        hostile.publish_stamped("consensus", WARM_UP.to_vec(), stamp);
        if tokio::time::timeout(ARRIVAL, consensus.recv()).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the hostile peer's gossip never arrived");
    }

    let flood = TRANSACTIONS_QUEUE_MAX + 2000;
    assert!(flood < FLOOD_MESSAGES_MAX);
    for i in 0..flood {
        hostile.publish("tx", format!("transaction {i}").into_bytes());
    }
    // Published after the whole flood on the same connection, so it is handled after it.
    hostile.publish("consensus", b"a vote".to_vec());
    let arrived = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(data) = consensus.recv().await {
            if data == b"a vote" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(arrived, Ok(true), "the consensus message was lost behind the transactions");
}
