//! The state tree: a sparse Merkle tree over 256-bit keys, so that a header's root proves any
//! entry (or its absence) to someone who holds only the header.
//!
//! The tree is binary and 256 levels deep in principle, but a subtree that holds one entry is
//! that entry's leaf, placed as high as it can go (the shape of Diem's and Aptos's Jellyfish
//! trees, read binary). So a tree of n entries has n leaves and at least n - 1 inner nodes (one
//! more per bit that two keys share below their last split: 2.44 nodes per entry at 10^6),
//! about log2(n) + 1 levels deep, and a proof is that many sibling hashes. The rules, which a verifier
//! in any language needs (written out with a vector in `docs/state-tree.md`):
//!
//! - **T1 keys.** An entry's key is a SHA-256 of a domain and the entry's identity
//!   ([`account_key`]); bit `i` of a key is bit `7 - i % 8` of byte `i / 8` (most significant
//!   first). Bit 0 picks the root's side: 0 left, 1 right.
//! - **T2 leaves.** A leaf's hash is `SHA-256(0x00 || key || value_hash)`, where `value_hash` is
//!   the SHA-256 of the entry's canonical bytes ([`account_value_hash`]). It does not depend on
//!   where the leaf sits, so a leaf moves without being rehashed.
//! - **T3 inner nodes.** An inner node's hash is `SHA-256(0x01 || left || right)`; an empty
//!   subtree's hash is 32 zero bytes ([`Hash::ZERO`]), and so is the root of an empty tree.
//! - **T4 canonical shape.** An inner node has at least two leaves below it; a subtree with one
//!   leaf is that leaf; an empty subtree has no node. One set of entries has exactly one tree,
//!   so every node that applies the same changes gets the same root and stores the same nodes.
//! - **T5 proofs.** A [`Proof`] of key `k` lists the sibling hashes from the root down to depth
//!   `d` and what sits at `k`'s position at depth `d`: nothing, or a leaf given by its key and
//!   value hash. It proves `k` holds that value (the leaf's key is `k`) or that `k` is absent
//!   (nothing, or a leaf of another key whose first `d` bits are `k`'s).
//!
//! Nodes are addressed by position ([`NodeKey`]: a depth and the key bits above it), so the
//! store holds only the current tree and an update rewrites the positions it changes
//! ([`update`] returns them). Reading is the caller's ([`TreeReader`]): the node's store, or
//! the changes of blocks not final yet layered over it ([`Layered`]).

use std::collections::{BTreeMap, HashMap};

use bincode::{Decode, Encode};

use crate::codec;
use crate::crypto::Hash;
use crate::state::Account;
use crate::Address;

/// The deepest a node can sit: two keys that share 255 bits split at depth 255, and their
/// leaves sit at depth 256.
pub const TREE_DEPTH_MAX: u16 = 256;

/// The key of an account's entry (T1).
pub fn account_key(addr: &Address) -> Hash {
    Hash::of(&[b"taksa/state/account", addr.as_bytes()])
}

/// The value hash of an account's entry (T2): SHA-256 of its canonical bytes, the balance as
/// 16 and the nonce as 8 little-endian bytes.
pub fn account_value_hash(acct: &Account) -> Hash {
    Hash::of(&[&codec::encode(acct)])
}

/// Bit `i` of `key` (T1): 0 sends it left, 1 right.
fn bit(key: &Hash, i: u16) -> u8 {
    let byte = key.0.get(usize::from(i / 8)).copied().unwrap_or(0);
    (byte >> (7 - i % 8)) & 1
}

/// A leaf's hash (T2).
pub fn leaf_hash(key: &Hash, value_hash: &Hash) -> Hash {
    Hash::of(&[&[0u8], &key.0, &value_hash.0])
}

/// An inner node's hash (T3).
pub fn inner_hash(left: &Hash, right: &Hash) -> Hash {
    Hash::of(&[&[1u8], &left.0, &right.0])
}

/// A node's position: its depth and the first `depth` bits of every key below it (the bits
/// beyond `depth` are zero, so a position has one value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub struct NodeKey {
    depth: u16,
    path: [u8; 32],
}

impl NodeKey {
    /// The root's position.
    pub const ROOT: NodeKey = NodeKey { depth: 0, path: [0; 32] };

    /// The position at `depth` on the way to `key`.
    pub fn of(key: &Hash, depth: u16) -> NodeKey {
        let depth = depth.min(TREE_DEPTH_MAX);
        let mut path = [0u8; 32];
        let full = usize::from(depth / 8);
        for (out, b) in path.iter_mut().zip(key.0).take(full) {
            *out = b;
        }
        let rest = depth % 8;
        if rest > 0 {
            if let (Some(out), Some(b)) = (path.get_mut(full), key.0.get(full)) {
                *out = b & (0xffu8 << (8 - rest));
            }
        }
        NodeKey { depth, path }
    }

    /// The depth: 0 for the root.
    pub fn depth(&self) -> u16 {
        self.depth
    }

    /// The child on side `side` (0 left, 1 right), or `None` at the deepest level.
    fn child(&self, side: u8) -> Option<NodeKey> {
        if self.depth >= TREE_DEPTH_MAX {
            return None;
        }
        let mut path = self.path;
        if side == 1 {
            let byte = path.get_mut(usize::from(self.depth / 8))?;
            *byte |= 0x80 >> (self.depth % 8);
        }
        Some(NodeKey { depth: self.depth + 1, path })
    }

    /// The 34 bytes a store keys the node by: the depth (big-endian) and the path.
    pub fn to_bytes(&self) -> [u8; 34] {
        let mut out = [0u8; 34];
        out[..2].copy_from_slice(&self.depth.to_be_bytes());
        out[2..].copy_from_slice(&self.path);
        out
    }

    /// Reads [`NodeKey::to_bytes`]; `None` unless it is a position (depth at most
    /// [`TREE_DEPTH_MAX`], no bits beyond it).
    pub fn from_bytes(bytes: &[u8]) -> Option<NodeKey> {
        let depth = u16::from_be_bytes(bytes.get(..2)?.try_into().ok()?);
        let path: [u8; 32] = bytes.get(2..)?.try_into().ok()?;
        let key = NodeKey { depth, path };
        (depth <= TREE_DEPTH_MAX && NodeKey::of(&Hash(path), depth) == key).then_some(key)
    }
}

/// A stored node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Node {
    /// An inner node: the hashes of its two subtrees (one may be [`Hash::ZERO`], empty).
    Inner {
        /// The left subtree's hash.
        left: Hash,
        /// The right subtree's hash.
        right: Hash,
    },
    /// A leaf: an entry's key and value hash.
    Leaf {
        /// The entry's key.
        key: Hash,
        /// Its value's hash.
        value_hash: Hash,
    },
}

impl Node {
    /// The node's hash (T2, T3).
    pub fn hash(&self) -> Hash {
        match self {
            Node::Inner { left, right } => inner_hash(left, right),
            Node::Leaf { key, value_hash } => leaf_hash(key, value_hash),
        }
    }

    /// The canonical bytes a store keeps.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Reads [`Node::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Node, crate::Error> {
        codec::decode(bytes, NODE_BYTES_MAX)
    }
}

/// The most bytes a stored node takes (a tag and two hashes).
pub const NODE_BYTES_MAX: usize = 4 + 64;

/// Read access to a tree's nodes by position. Shared by the threads of one update.
pub trait TreeReader: Sync {
    /// The node at `at`, if there is one.
    fn node(&self, at: &NodeKey) -> Option<Node>;
}

impl TreeReader for HashMap<NodeKey, Node> {
    fn node(&self, at: &NodeKey) -> Option<Node> {
        self.get(at).copied()
    }
}

impl TreeReader for BTreeMap<NodeKey, Node> {
    fn node(&self, at: &NodeKey) -> Option<Node> {
        self.get(at).copied()
    }
}

/// Node changes: each position written (`Some`) or removed (`None`).
pub type NodeChanges = BTreeMap<NodeKey, Option<Node>>;

/// The changes of blocks not final yet, newest last, over a base tree.
pub struct Layered<'a, R: TreeReader + ?Sized> {
    /// The committed tree.
    pub base: &'a R,
    /// Each pending block's changes, oldest first.
    pub layers: Vec<&'a NodeChanges>,
}

impl<R: TreeReader + ?Sized> TreeReader for Layered<'_, R> {
    fn node(&self, at: &NodeKey) -> Option<Node> {
        node_after(self.layers.iter().rev().copied(), self.base, at)
    }
}

/// The node at `at` after `layers` of changes (newest first) over `base`: the newest layer that
/// writes or removes it decides, else the base.
pub fn node_after<'a>(
    layers: impl IntoIterator<Item = &'a NodeChanges>,
    base: &(impl TreeReader + ?Sized),
    at: &NodeKey,
) -> Option<Node> {
    match layers.into_iter().find_map(|layer| layer.get(at)) {
        Some(change) => *change,
        None => base.node(at),
    }
}

/// Applies `changes` to `store` (what a commit writes).
pub fn apply_changes(store: &mut HashMap<NodeKey, Node>, changes: &NodeChanges) {
    for (at, node) in changes {
        match node {
            Some(n) => store.insert(*at, *n),
            None => store.remove(at),
        };
    }
}

/// Why a tree update or a proof could not be built: the store lacks a node the tree above it
/// names, so the store is damaged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the state tree has no node at depth {depth} where its parent names one: the store is damaged")]
pub struct MissingNode {
    /// The depth of the missing node.
    pub depth: u16,
}

/// The outcome of an update: the new root and every position it wrote or removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeUpdate {
    /// The root hash after the update.
    pub root: Hash,
    /// The node changes, for the store.
    pub nodes: NodeChanges,
}

/// What an update of one subtree left there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sub {
    Empty,
    Leaf { key: Hash, value_hash: Hash },
    Inner(Hash),
}

impl Sub {
    fn hash(&self) -> Hash {
        match self {
            Sub::Empty => Hash::ZERO,
            Sub::Leaf { key, value_hash } => leaf_hash(key, value_hash),
            Sub::Inner(h) => *h,
        }
    }
}

/// One entry's change: its key and new value hash, `None` to remove it.
pub type EntryChange = (Hash, Option<Hash>);

/// Applies `changes` (any order; a key given twice keeps its last value) to the tree `reader`
/// holds, and returns the new root with the node changes to store (T4 holds after them).
pub fn update(reader: &(impl TreeReader + ?Sized), changes: &[EntryChange]) -> Result<TreeUpdate, MissingNode> {
    let sorted: BTreeMap<Hash, Option<Hash>> = changes.iter().copied().collect();
    let sorted: Vec<EntryChange> = sorted.into_iter().collect();
    let root_node = reader.node(&NodeKey::ROOT);
    if let Some(Node::Inner { left, right }) = root_node {
        if sorted.len() >= PARALLEL_CHANGES_MIN && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1) {
            return update_halves(reader, &sorted, left, right);
        }
    }
    let mut writer = Writer { reader, nodes: NodeChanges::new() };
    let root = writer.apply(NodeKey::ROOT, root_node, &sorted)?;
    Ok(TreeUpdate { root: root.hash(), nodes: writer.nodes })
}

/// From this many changes on, the root's two halves are updated on two threads: the work is
/// mostly waiting on memory for node lookups, which two cores do twice as fast. The halves are
/// disjoint, so the result is the one a single thread gives.
const PARALLEL_CHANGES_MIN: usize = 1024;

/// [`update`] of a tree whose root is an inner node, one half per thread.
fn update_halves<R: TreeReader + ?Sized>(
    reader: &R,
    sorted: &[EntryChange],
    left: Hash,
    right: Hash,
) -> Result<TreeUpdate, MissingNode> {
    let split = sorted.partition_point(|(k, _)| bit(k, 0) == 0);
    let (to_left, to_right) = sorted.split_at(split);
    let half = |side: u8, hash: Hash, part: &[EntryChange]| {
        let mut writer = Writer { reader, nodes: NodeChanges::new() };
        writer.side(NodeKey::ROOT, side, hash, part).map(|s| (s, writer.nodes))
    };
    let (l, r) = std::thread::scope(|s| {
        // A thread the OS refuses (a pid or thread limit) leaves the left half to this one.
        let job = std::thread::Builder::new().spawn_scoped(s, || half(0, left, to_left)).ok();
        let r = half(1, right, to_right);
        let l = match job {
            // A panic on the other thread is a bug there; carry it on here rather than hide it.
            Some(job) => job.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
            None => half(0, left, to_left),
        };
        (l, r)
    });
    let ((l, mut nodes), (r, right_nodes)) = (l?, r?);
    nodes.extend(right_nodes);
    let mut writer = Writer { reader, nodes };
    let root = writer.join(NodeKey::ROOT, Node::Inner { left, right }, l, r);
    Ok(TreeUpdate { root: root.hash(), nodes: writer.nodes })
}

/// The accounts' entry changes: each changed account's key and value hash, an account back at
/// zero removed (every address starts at zero, so an absent entry means a zero account).
pub fn account_changes(changes: &BTreeMap<Address, Account>) -> Vec<EntryChange> {
    changes
        .iter()
        .map(|(addr, acct)| {
            let value = (*acct != Account::default()).then(|| account_value_hash(acct));
            (account_key(addr), value)
        })
        .collect()
}

struct Writer<'a, R: TreeReader + ?Sized> {
    reader: &'a R,
    nodes: NodeChanges,
}

impl<R: TreeReader + ?Sized> Writer<'_, R> {
    /// Applies `changes` (sorted, every key under `at`) to the subtree at `at`, whose node is
    /// `current`, and says what is there after.
    fn apply(&mut self, at: NodeKey, current: Option<Node>, changes: &[EntryChange]) -> Result<Sub, MissingNode> {
        if changes.is_empty() {
            return Ok(match current {
                None => Sub::Empty,
                Some(Node::Leaf { key, value_hash }) => Sub::Leaf { key, value_hash },
                Some(n) => Sub::Inner(n.hash()),
            });
        }
        match current {
            None => self.build(at, &live(changes, None)),
            Some(Node::Leaf { key, value_hash }) => {
                let entries = live(changes, Some((key, value_hash)));
                match entries.as_slice() {
                    [] => self.remove(at),
                    [only] if *only == (key, value_hash) => return Ok(Sub::Leaf { key, value_hash }),
                    _ => {}
                }
                self.build(at, &entries)
            }
            Some(Node::Inner { left, right }) => {
                let split = changes.partition_point(|(k, _)| bit(k, at.depth) == 0);
                let (to_left, to_right) = changes.split_at(split);
                let l = self.side(at, 0, left, to_left)?;
                let r = self.side(at, 1, right, to_right)?;
                Ok(self.join(at, Node::Inner { left, right }, l, r))
            }
        }
    }

    /// Updates one side of the inner node at `at`, whose hash there is `hash`.
    fn side(&mut self, at: NodeKey, side: u8, hash: Hash, changes: &[EntryChange]) -> Result<Side, MissingNode> {
        let child = at.child(side).ok_or(MissingNode { depth: at.depth })?;
        if changes.is_empty() {
            return Ok(Side { at: child, sub: None, hash });
        }
        let node = if hash == Hash::ZERO {
            None
        } else {
            Some(self.reader.node(&child).ok_or(MissingNode { depth: child.depth })?)
        };
        let sub = self.apply(child, node, changes)?;
        Ok(Side { at: child, sub: Some(sub), hash: sub.hash() })
    }

    /// Joins two updated sides under the inner node at `at`, which was `before` (T4: an inner
    /// node with one leaf and an empty side becomes that leaf).
    fn join(&mut self, at: NodeKey, before: Node, l: Side, r: Side) -> Sub {
        for (one, other) in [(&l, &r), (&r, &l)] {
            if other.hash != Hash::ZERO {
                continue;
            }
            // `other` is empty: the subtree is whatever `one` holds, moved up here when a leaf.
            let leaf = match one.sub {
                Some(Sub::Leaf { key, value_hash }) => Some((key, value_hash)),
                Some(_) => None,
                None => match self.reader.node(&one.at) {
                    Some(Node::Leaf { key, value_hash }) => Some((key, value_hash)),
                    _ => None,
                },
            };
            if one.hash == Hash::ZERO {
                self.remove(at);
                return Sub::Empty;
            }
            if let Some((key, value_hash)) = leaf {
                self.remove(one.at);
                self.nodes.insert(at, Some(Node::Leaf { key, value_hash }));
                return Sub::Leaf { key, value_hash };
            }
        }
        let node = Node::Inner { left: l.hash, right: r.hash };
        if node != before {
            self.nodes.insert(at, Some(node));
        }
        Sub::Inner(node.hash())
    }

    /// Removes the node at `at`: a removal for the store if it holds one there, else only the
    /// write this update made (so that no position the store never had is deleted from it).
    fn remove(&mut self, at: NodeKey) {
        if self.reader.node(&at).is_some() {
            self.nodes.insert(at, None);
        } else {
            self.nodes.remove(&at);
        }
    }

    /// Writes a fresh subtree at `at` holding exactly `entries` (sorted, distinct, under `at`),
    /// where nothing below `at` is stored (the caller removes what was at `at`).
    fn build(&mut self, at: NodeKey, entries: &[(Hash, Hash)]) -> Result<Sub, MissingNode> {
        match entries {
            [] => Ok(Sub::Empty),
            [(key, value_hash)] => {
                self.nodes.insert(at, Some(Node::Leaf { key: *key, value_hash: *value_hash }));
                Ok(Sub::Leaf { key: *key, value_hash: *value_hash })
            }
            _ => {
                let split = entries.partition_point(|(k, _)| bit(k, at.depth) == 0);
                let (to_left, to_right) = entries.split_at(split);
                let mut hashes = [Hash::ZERO; 2];
                for (side, part) in [(0u8, to_left), (1u8, to_right)] {
                    if part.is_empty() {
                        continue;
                    }
                    let child = at.child(side).ok_or(MissingNode { depth: at.depth })?;
                    if let Some(h) = hashes.get_mut(usize::from(side)) {
                        *h = self.build(child, part)?.hash();
                    }
                }
                let [left, right] = hashes;
                let node = Node::Inner { left, right };
                self.nodes.insert(at, Some(node));
                Ok(Sub::Inner(node.hash()))
            }
        }
    }
}

/// One side of an inner node during an update: its position, what the update left there
/// (`None` when the side was not touched) and its hash.
struct Side {
    at: NodeKey,
    sub: Option<Sub>,
    hash: Hash,
}

/// The entries a subtree holds after `changes` (sorted), when before it held at most `leaf`.
fn live(changes: &[EntryChange], leaf: Option<(Hash, Hash)>) -> Vec<(Hash, Hash)> {
    let mut out: Vec<(Hash, Hash)> = changes.iter().filter_map(|(k, v)| v.map(|v| (*k, v))).collect();
    if let Some((key, value_hash)) = leaf {
        if changes.binary_search_by(|(k, _)| k.cmp(&key)).is_err() {
            let at = out.partition_point(|(k, _)| *k < key);
            out.insert(at, (key, value_hash));
        }
    }
    out
}

/// What a proof finds at its key's position (T5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Terminal {
    /// An empty subtree: the key is absent.
    Empty,
    /// A leaf: the key's entry, or another key's (then the key is absent).
    Leaf {
        /// The leaf's key.
        key: Hash,
        /// The leaf's value hash.
        value_hash: Hash,
    },
}

/// A proof that a key holds a value, or is absent, under a root (T5).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Proof {
    /// The sibling hashes from the root's children down to the terminal's depth.
    pub siblings: Vec<Hash>,
    /// What sits at the key's position at that depth.
    pub terminal: Terminal,
}

/// Why a proof does not prove the claim.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// More siblings than the tree has levels.
    #[error("the proof has {0} siblings; a tree has at most 256 levels")]
    TooDeep(usize),
    /// The terminal does not support the claim (another value, or the key present).
    #[error("the proof's leaf does not match the claim")]
    WrongLeaf,
    /// The hashes do not lead to the root.
    #[error("the proof leads to root {computed}, not {expected}")]
    WrongRoot {
        /// The root it leads to.
        computed: Hash,
        /// The root claimed.
        expected: Hash,
    },
}

impl Proof {
    /// Checks that under `root`, `key` holds the value with hash `value_hash`, or is absent
    /// when `value_hash` is `None`.
    pub fn verify(&self, root: &Hash, key: &Hash, value_hash: Option<&Hash>) -> Result<(), ProofError> {
        let depth = u16::try_from(self.siblings.len())
            .ok()
            .filter(|d| *d <= TREE_DEPTH_MAX)
            .ok_or(ProofError::TooDeep(self.siblings.len()))?;
        let mut current = match (&self.terminal, value_hash) {
            (Terminal::Empty, None) => Hash::ZERO,
            (Terminal::Leaf { key: k, value_hash: v }, Some(claimed)) if k == key && v == claimed => leaf_hash(k, v),
            (Terminal::Leaf { key: k, value_hash: v }, None)
                if k != key && NodeKey::of(k, depth) == NodeKey::of(key, depth) =>
            {
                leaf_hash(k, v)
            }
            _ => return Err(ProofError::WrongLeaf),
        };
        for (i, sibling) in (0..depth).zip(&self.siblings).rev() {
            current = if bit(key, i) == 0 { inner_hash(&current, sibling) } else { inner_hash(sibling, &current) };
        }
        if current != *root {
            return Err(ProofError::WrongRoot { computed: current, expected: *root });
        }
        Ok(())
    }
}

/// The proof for `key` in the tree `reader` holds.
pub fn prove(reader: &(impl TreeReader + ?Sized), key: &Hash) -> Result<Proof, MissingNode> {
    let mut siblings = Vec::new();
    let mut at = NodeKey::ROOT;
    let mut node = reader.node(&at);
    loop {
        match node {
            None => return Ok(Proof { siblings, terminal: Terminal::Empty }),
            Some(Node::Leaf { key, value_hash }) => {
                return Ok(Proof { siblings, terminal: Terminal::Leaf { key, value_hash } })
            }
            Some(Node::Inner { left, right }) => {
                let side = bit(key, at.depth);
                let (next, sibling) = if side == 0 { (left, right) } else { (right, left) };
                siblings.push(sibling);
                at = at.child(side).ok_or(MissingNode { depth: at.depth })?;
                node = if next == Hash::ZERO {
                    None
                } else {
                    Some(reader.node(&at).ok_or(MissingNode { depth: at.depth })?)
                };
            }
        }
    }
}

/// The root of the tree holding exactly `entries`, computed from nothing (what a store check or
/// a test compares against).
pub fn root_of(entries: &[(Hash, Hash)]) -> Hash {
    let sorted: BTreeMap<Hash, Hash> = entries.iter().copied().collect();
    let sorted: Vec<(Hash, Hash)> = sorted.into_iter().collect();
    subtree_root(0, &sorted)
}

fn subtree_root(depth: u16, entries: &[(Hash, Hash)]) -> Hash {
    match entries {
        [] => Hash::ZERO,
        [(key, value_hash)] => leaf_hash(key, value_hash),
        _ => {
            let split = entries.partition_point(|(k, _)| bit(k, depth) == 0);
            let (l, r) = entries.split_at(split);
            inner_hash(&subtree_root(depth + 1, l), &subtree_root(depth + 1, r))
        }
    }
}
