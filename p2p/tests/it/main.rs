//! Real swarms on 127.0.0.1 in one process: gossip, validation and scoring, sync requests,
//! discovery and connection limits, reserved peers, eclipse and replay resistance, and a hostile
//! raw libp2p peer for what our own nodes never send.

/// Polls `$cond` (which may `.await`) every 50 ms until it holds, failing after `$secs` seconds.
macro_rules! eventually {
    ($what:expr, $secs:expr, $cond:expr) => {{
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs($secs);
        loop {
            if $cond {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {}", $what);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }};
}

mod common;
mod eclipse;
mod gossip;
mod hostile;
mod peers;
mod replay;
mod reserved;
mod scoring;
mod sync;
