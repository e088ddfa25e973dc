//! The sync request-response protocol between real nodes, and against a peer that answers with
//! bytes over the limit.

use std::time::{Duration, Instant};

use taksa_consensus::{Block, Hash};
use taksa_p2p::{Error, PeerId, Request, Response, Verdict, BLOCKS_PER_REQUEST_MAX, SYNC_RESPONSE_BYTES_MAX};

use crate::common::{peer, sample_blocks, start_node, Node, Pump, Seen};
use crate::hostile::Hostile;

/// The block hash the serving node pretends not to know, and answers by dropping the reply.
const DROPPED: Hash = Hash([0xdd; 32]);
/// The block hash the serving node answers with a block over the response limit.
const OVERSIZED: Hash = Hash([0xee; 32]);

fn serve(request: &Request) -> Option<Response> {
    let blocks = sample_blocks();
    match request {
        Request::Status => Some(Response::Status {
            head: blocks[1].block.header.clone(),
            finalization: blocks[1].finalization.clone(),
        }),
        Request::Blocks { from_height, count } => Some(Response::Blocks(
            blocks.into_iter().filter(|b| b.block.header.height >= *from_height).take(*count as usize).collect(),
        )),
        Request::Block { hash } if *hash == DROPPED => None,
        Request::Block { hash } if *hash == OVERSIZED => {
            let mut block = blocks[0].block.clone();
            block.header.chain_id = "x".repeat(SYNC_RESPONSE_BYTES_MAX);
            Some(Response::Block(Some(block)))
        }
        Request::Block { hash } => {
            Some(Response::Block(blocks.into_iter().map(|b| b.block).find(|b| b.hash() == *hash)))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_blocks_and_block_requests_round_trip() {
    let mut server = start_node(40, &[], 50).await;
    let mut client = start_node(41, &[&server], 50).await;
    let mut served = server.pump(|_| Verdict::Accept, serve);
    let _client_seen = client.accept_all();
    eventually!("the client to connect", 10, peer(&client.handle, &server.id).await.is_some());
    let blocks = sample_blocks();

    let status = client.handle.request(&server.id, Request::Status).await.expect("status");
    let expected =
        Response::Status { head: blocks[1].block.header.clone(), finalization: blocks[1].finalization.clone() };
    assert_eq!(status, expected);

    let got = client.handle.request(&server.id, Request::Blocks { from_height: 1, count: 2 }).await.expect("blocks");
    assert_eq!(got, Response::Blocks(blocks.clone()));
    let Response::Blocks(got) = got else { unreachable!() };
    assert_eq!(got[1].block.header.parent_hash, got[0].block.hash());
    assert_eq!(got[0].block.txs.len(), 1);

    let hash = blocks[0].block.hash();
    let one = client.handle.request(&server.id, Request::Block { hash }).await.expect("block");
    assert_eq!(one, Response::Block(Some(blocks[0].block.clone())));
    let none = client.handle.request(&server.id, Request::Block { hash: Hash([1; 32]) }).await.expect("block");
    assert_eq!(none, Response::Block(None::<Block>));
    served.drain();
    assert!(served.log.contains(&Seen::Request(Request::Status)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_oversized_and_excessive_requests_fail_fast() {
    let mut server = start_node(42, &[], 50).await;
    let mut client = start_node(43, &[&server], 50).await;
    let mut served = server.pump(|_| Verdict::Accept, serve);
    let _client_seen = client.accept_all();
    eventually!("the client to connect", 10, peer(&client.handle, &server.id).await.is_some());

    // The node drops the Reply: the requester gets an error, not a hang until the timeout.
    let started = Instant::now();
    let dropped = client.handle.request(&server.id, Request::Block { hash: DROPPED }).await;
    assert!(matches!(dropped, Err(Error::Remote { .. })), "{dropped:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());

    // A response over the limit is not sent; the requester errors at once and blames nobody.
    let started = Instant::now();
    let oversized = client.handle.request(&server.id, Request::Block { hash: OVERSIZED }).await;
    assert!(matches!(oversized, Err(Error::Remote { .. })), "{oversized:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(peer(&server.handle, &client.id).await.map(|p| p.score), Some(0));
    assert_eq!(peer(&client.handle, &server.id).await.map(|p| p.score), Some(0));

    // Our own node never asks for more blocks than a peer would serve.
    let excessive = Request::Blocks { from_height: 1, count: BLOCKS_PER_REQUEST_MAX + 1 };
    let refused = client.handle.request(&server.id, excessive.clone()).await;
    assert!(matches!(refused, Err(Error::TooLarge { .. })), "{refused:?}");
    served.drain();
    assert!(!served.log.contains(&Seen::Request(excessive)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_a_peer_that_is_gone_fail() {
    let server = start_node(44, &[], 50).await;
    let mut client = start_node(45, &[&server], 50).await;
    let mut client_seen = client.accept_all();
    eventually!("the client to connect", 10, peer(&client.handle, &server.id).await.is_some());
    server.handle.shutdown().await;
    assert!(client_seen.wait_for(Duration::from_secs(5), |s| *s == Seen::Disconnected(server.id)).await);

    let started = Instant::now();
    let result = client.handle.request(&server.id, Request::Status).await;
    assert!(matches!(result, Err(Error::Remote { .. } | Error::Timeout)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(13), "took {:?}", started.elapsed());
    // After shutdown the stopped node's handle reports nothing and fails requests.
    assert!(server.handle.peers().await.is_empty());
    assert!(matches!(server.handle.request(&client.id, Request::Status).await, Err(Error::Closed)));
}

/// Starts a node and a hostile peer answering every request with `answer`; returns the
/// hostile peer's id as the node knows it once it has connected.
async fn node_and_hostile(seed: u8, answer: Vec<u8>) -> (Node, Pump, Hostile, PeerId) {
    let mut node = start_node(seed, &[], 50).await;
    let mut seen = node.accept_all();
    let hostile = Hostile::start(seed + 1, &node.addr, answer);
    let hostile_id = hostile.id.to_string();
    let connected = |s: &Seen| matches!(s, Seen::Connected(p) if p.to_string() == hostile_id);
    assert!(seen.wait_for(Duration::from_secs(10), connected).await);
    let Some(Seen::Connected(hostile_peer)) = seen.log.last().cloned() else { unreachable!() };
    (node, seen, hostile, hostile_peer)
}

/// A request frame: the length prefix, then the bytes.
fn frame(prefix: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_le_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_the_limit_is_refused_by_the_requesters_codec() {
    let claimed = u32::try_from(SYNC_RESPONSE_BYTES_MAX + 1).expect("fits u32");
    let (node, _seen, _hostile, hostile_peer) = node_and_hostile(46, frame(claimed, &[0u8; 1024])).await;

    let started = Instant::now();
    let result = node.handle.request(&hostile_peer, Request::Status).await;
    assert!(matches!(result, Err(Error::Decode { .. })), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(peer(&node.handle, &hostile_peer).await.map(|p| p.score), Some(-25));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_limits_cost_the_asker_until_it_is_banned() {
    let (node, mut seen, hostile, hostile_peer) = node_and_hostile(48, Vec::new()).await;

    // Well-formed, but for more blocks than anyone serves: refused inside p2p.
    let excessive = Request::Blocks { from_height: 1, count: BLOCKS_PER_REQUEST_MAX + 1 };
    let encoded = taksa_consensus::codec::encode(&excessive);
    hostile.request(&node.id, frame(u32::try_from(encoded.len()).expect("small"), &encoded));
    eventually!("the asker to lose score", 5, peer(&node.handle, &hostile_peer).await.map(|p| p.score) == Some(-25));

    // A length prefix over the request limit is refused before reading further: banned at -50.
    hostile.request(&node.id, frame(2000, &[0u8; 64]));
    assert!(seen.wait_for(Duration::from_secs(5), |s| *s == Seen::Disconnected(hostile_peer)).await);
    assert!(peer(&node.handle, &hostile_peer).await.is_none());
    assert!(!seen.log.iter().any(|s| matches!(s, Seen::Request(_))), "the node saw a refused request");
}
