//! The simulated application: builds empty blocks and checks them against their parent, with
//! one shared block store standing in for block sync (a node may verify a child of a block it
//! never received, as a real node would after fetching it).

use std::collections::BTreeMap;

use taksa_consensus::block::tx_root;
use taksa_consensus::engine::Config;
use taksa_consensus::{Address, Block, Certificate, Hash, Header};

use super::{GENESIS_HASH, T0};

/// The state root after `height` on top of `parent_root`: a stand-in for executing txs.
fn next_state(parent_root: &Hash, height: u64) -> Hash {
    Hash::of(&[b"sim/state", &parent_root.0, &height.to_le_bytes()])
}

/// What a block's child needs of it: (height, view, timestamp, state root).
fn parent_facts(blocks: &BTreeMap<Hash, Block>, parent: &Hash) -> Option<(u64, u64, u64, Hash)> {
    if *parent == GENESIS_HASH {
        return Some((0, 0, T0, Hash([0x5E; 32])));
    }
    let h = &blocks.get(parent)?.header;
    Some((h.height, h.view, h.timestamp_ms, h.state_root))
}

/// What `Effect::Propose` asks for.
pub(crate) struct Request {
    pub(crate) view: u64,
    pub(crate) parent: Hash,
    pub(crate) parent_height: u64,
    pub(crate) parent_cert: Option<Certificate>,
}

/// Builds our proposal, as the node does for `Effect::Propose`.
pub(crate) fn build(
    blocks: &BTreeMap<Hash, Block>,
    cfg: &Config,
    proposer: Address,
    request: Request,
    now_ms: u64,
) -> Result<Block, String> {
    let Request { view, parent, parent_height, parent_cert } = request;
    let (height, _, ts, root) =
        parent_facts(blocks, &parent).ok_or_else(|| format!("asked to build on unknown block {parent}"))?;
    if height != parent_height {
        return Err(format!("asked to build on {parent} at height {parent_height}, it is at {height}"));
    }
    let header = Header {
        chain_id: cfg.domain.chain_id.clone(),
        height: height + 1,
        view,
        parent_hash: parent,
        proposer,
        timestamp_ms: now_ms.max(ts),
        tx_root: tx_root(&[]),
        evidence_root: taksa_consensus::block::evidence_root(&[]),
        state_root: next_state(&root, height + 1),
        validator_set_hash: cfg.validators.hash(),
        parent_cert,
    };
    Ok(Block { header, evidence: Vec::new(), txs: Vec::new() })
}

/// Checks a block against its parent, as the node does for `Effect::Verify`.
pub(crate) fn verify(blocks: &BTreeMap<Hash, Block>, cfg: &Config, block: &Block) -> bool {
    let h = &block.header;
    let Some((height, view, ts, root)) = parent_facts(blocks, &h.parent_hash) else { return false };
    h.chain_id == cfg.domain.chain_id
        && h.height == height + 1
        && h.view > view
        && h.timestamp_ms >= ts
        && h.state_root == next_state(&root, h.height)
        && h.proposer == cfg.validators.leader(h.view)
        && h.validator_set_hash == cfg.validators.hash()
        && block.check_shape().is_ok()
}
