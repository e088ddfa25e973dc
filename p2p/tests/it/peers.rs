//! Peers, addresses and limits: what `peers()` and `listen_addrs()` report, the connection limit,
//! bootnode re-dials and start-up errors.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use taksa_p2p::{Config, Error};

use crate::common::{genesis_hash, peer, start_at, start_node, Seen, CHAIN_ID};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_and_listen_addrs_describe_the_connection() {
    let mut a = start_node(50, &[], 50).await;
    let mut b = start_node(51, &[&a], 50).await;
    let mut a_seen = a.accept_all();
    let _b_seen = b.accept_all();

    let addrs = a.handle.listen_addrs().await;
    assert_eq!(addrs.len(), 1);
    let port = addrs[0].strip_prefix("/ip4/127.0.0.1/tcp/").and_then(|rest| rest.split('/').next());
    let port: u16 = port.and_then(|p| p.parse().ok()).expect("a TCP port");
    assert_ne!(port, 0);
    assert_eq!(addrs[0], format!("/ip4/127.0.0.1/tcp/{port}/p2p/{}", a.id));

    assert!(a_seen.wait_for(Duration::from_secs(10), |s| *s == Seen::Connected(b.id)).await);
    let agent = format!("taksa/{}", env!("CARGO_PKG_VERSION"));
    eventually!("identify to run", 10, peer(&a.handle, &b.id).await.and_then(|p| p.agent) == Some(agent.clone()));
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as u64;

    let b_at_a = peer(&a.handle, &b.id).await.expect("B is listed");
    assert!(b_at_a.inbound);
    assert!(b_at_a.addr.starts_with("/ip4/127.0.0.1/tcp/"), "{}", b_at_a.addr);
    assert_eq!(b_at_a.score, 0);
    assert!(now_ms.abs_diff(b_at_a.connected_ms) < 30_000);

    let a_at_b = peer(&b.handle, &a.id).await.expect("A is listed");
    assert!(!a_at_b.inbound);
    assert_eq!(a_at_b.addr, format!("/ip4/127.0.0.1/tcp/{port}"));
    assert_eq!(b.handle.peers().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_limit_keeps_a_third_node_out() {
    let mut x = start_node(52, &[], 1).await;
    let y = start_node(53, &[&x], 50).await;
    let mut x_seen = x.accept_all();
    eventually!("Y to connect to X", 10, peer(&x.handle, &y.id).await.is_some());

    let z = start_node(54, &[&x], 50).await;
    // Z has no peer, so it re-dials X every 2 s; X must refuse every time.
    let until = Instant::now() + Duration::from_millis(2600);
    while Instant::now() < until {
        let peers = x.handle.peers().await;
        assert_eq!(peers.len(), 1, "{peers:?}");
        assert_eq!(peers[0].peer, y.id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    x_seen.drain();
    assert!(!x_seen.log.contains(&Seen::Connected(z.id)));
    assert!(z.handle.peers().await.iter().all(|p| p.peer != y.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_bootnode_is_found_again() {
    let boot = start_node(55, &[], 50).await;
    let mut node = start_node(56, &[&boot], 50).await;
    let mut seen = node.accept_all();
    assert!(seen.wait_for(Duration::from_secs(10), |s| *s == Seen::Connected(boot.id)).await);

    let listen = boot.addr.split("/p2p/").next().expect("an address").to_string();
    boot.handle.shutdown().await;
    assert!(seen.wait_for(Duration::from_secs(5), |s| *s == Seen::Disconnected(boot.id)).await);

    let restarted = start_at(55, &listen, vec![], 50).await;
    assert_eq!(restarted.id, boot.id, "same seed, same identity");
    assert!(seen.wait_for(Duration::from_secs(10), |s| *s == Seen::Connected(boot.id)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_busy_listen_addresses_fail_at_start() {
    let bad = taksa_p2p::start(Config::new("not an address", CHAIN_ID, genesis_hash(), [57; 32])).await;
    assert!(matches!(bad, Err(Error::BadAddress { .. })));
    let mut config = Config::new("127.0.0.1:0", CHAIN_ID, genesis_hash(), [57; 32]);
    config.bootnodes = vec!["/ip4/127.0.0.1/udp/1".into()];
    assert!(matches!(taksa_p2p::start(config).await, Err(Error::BadAddress { .. })));

    let first = start_node(58, &[], 50).await;
    let taken = first.addr.split("/p2p/").next().expect("an address").to_string();
    let busy = taksa_p2p::start(Config::new(taken, CHAIN_ID, genesis_hash(), [59; 32])).await;
    assert!(matches!(busy, Err(Error::Listen { .. })), "{busy:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_chain_is_disconnected_after_identify() {
    let mut node = start_node(60, &[], 50).await;
    let mut seen = node.accept_all();
    let mut config = Config::new("127.0.0.1:0", "another-chain", genesis_hash(), [61; 32]);
    config.bootnodes = vec![node.addr.clone()];
    let (stranger, _events) = taksa_p2p::start(config).await.expect("starts");
    let stranger_id = stranger.local_peer_id();
    assert!(seen.wait_for(Duration::from_secs(10), |s| *s == Seen::Disconnected(stranger_id)).await);
    assert!(peer(&node.handle, &stranger_id).await.is_none());
}
