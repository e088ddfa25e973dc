//! The ready file: what a started node tells scripts and supervisors (`--ready-file FILE`), so
//! they wait on a file with a fixed format rather than on words in its log.

use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// Written once the node serves JSON-RPC and listens for peers. Not a health check: whether it
/// has caught up with the chain is `GET /ready`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ready {
    /// The node's process id.
    pub pid: u32,
    /// Its JSON-RPC URL (HTTP; WebSocket on the same port).
    pub rpc_url: String,
    /// Its p2p addresses, each ending in `/p2p/PEER_ID` (none for `taksa dev`).
    pub p2p_addrs: Vec<String>,
    /// The chain id.
    pub chain_id: String,
    /// The genesis hash (`0x…`).
    pub genesis_hash: String,
}

/// A ready file's largest size: a few addresses and hashes.
const READY_BYTES_MAX: u64 = 64 * 1024;

impl Ready {
    /// Writes the file atomically (a temporary file renamed over it): a reader sees the whole
    /// file or none.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let name = path.file_name().map_or_else(|| "ready".into(), |n| n.to_string_lossy().into_owned());
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let text = serde_json::to_string_pretty(self)? + "\n";
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write the ready file {}", path.display()))
    }

    /// Reads a ready file; `None` if there is none (yet).
    pub fn read(path: &Path) -> anyhow::Result<Option<Ready>> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            Ok(m) if m.len() > READY_BYTES_MAX => anyhow::bail!("{} is not a ready file (too large)", path.display()),
            Ok(_) => {}
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).map(Some).with_context(|| format!("{} is not a ready file", path.display()))
    }

    /// The p2p address without its `/p2p/…` suffix (`/ip4/127.0.0.1/tcp/30400`).
    pub fn p2p_listen_addr(&self) -> Option<&str> {
        self.p2p_addrs.first().map(|a| a.split("/p2p/").next().unwrap_or(a))
    }

    /// The peer id (the part after `/p2p/`).
    pub fn peer_id(&self) -> Option<&str> {
        self.p2p_addrs.first().and_then(|a| a.split("/p2p/").nth(1))
    }

    /// The RPC port.
    pub fn rpc_port(&self) -> Option<u16> {
        self.rpc_url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
    }

    /// The p2p port.
    pub fn p2p_port(&self) -> Option<u16> {
        self.p2p_listen_addr()?.rsplit('/').next()?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_file_round_trips_and_names_its_ports() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ready.json");
        assert_eq!(Ready::read(&path).expect("absent is fine"), None);
        let r = Ready {
            pid: 42,
            rpc_url: "http://127.0.0.1:8600".into(),
            p2p_addrs: vec!["/ip4/127.0.0.1/tcp/30400/p2p/12D3KooWAbc".into()],
            chain_id: "taksa-testnet-1".into(),
            genesis_hash: "0x00".into(),
        };
        r.write(&path).expect("write");
        let back = Ready::read(&path).expect("read").expect("present");
        assert_eq!(back, r);
        assert_eq!(back.rpc_port(), Some(8600));
        assert_eq!(back.p2p_port(), Some(30400));
        assert_eq!(back.peer_id(), Some("12D3KooWAbc"));
        assert_eq!(back.p2p_listen_addr(), Some("/ip4/127.0.0.1/tcp/30400"));
        std::fs::write(&path, "{not json").expect("write");
        assert!(Ready::read(&path).is_err());
    }
}
