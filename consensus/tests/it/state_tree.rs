//! The state tree (`taksa_consensus::tree`): incremental updates agree with a tree built from
//! nothing, the store holds exactly the canonical nodes, and proofs prove what they claim and
//! nothing else.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use taksa_consensus::tree::{
    apply_changes, inner_hash, leaf_hash, prove, root_of, update, Layered, Node, NodeChanges, NodeKey, Proof,
    ProofError, Terminal, TreeReader,
};
use taksa_consensus::Hash;

fn key(i: u16) -> Hash {
    Hash::of(&[b"key", &i.to_le_bytes()])
}

fn value(v: u16) -> Hash {
    Hash::of(&[b"value", &v.to_le_bytes()])
}

/// Applies batches of (key, value or removal) and checks every invariant after each batch.
fn run(batches: &[Vec<(u16, Option<u16>)>]) -> Result<(), TestCaseError> {
    let mut store: HashMap<_, _> = HashMap::new();
    let mut entries: BTreeMap<Hash, Hash> = BTreeMap::new();
    for batch in batches {
        let changes: Vec<(Hash, Option<Hash>)> = batch.iter().map(|(k, v)| (key(*k), v.map(value))).collect();
        let out = update(&store, &changes).expect("the store holds every node");
        apply_changes(&mut store, &out.nodes);
        for (k, v) in &changes {
            match v {
                Some(v) => entries.insert(*k, *v),
                None => entries.remove(k),
            };
        }
        let all: Vec<(Hash, Hash)> = entries.iter().map(|(k, v)| (*k, *v)).collect();
        prop_assert_eq!(out.root, root_of(&all), "incremental root equals the root built from nothing");
        let mut fresh = HashMap::new();
        apply_changes(
            &mut fresh,
            &update(&HashMap::new(), &all.iter().map(|(k, v)| (*k, Some(*v))).collect::<Vec<_>>())
                .expect("from nothing")
                .nodes,
        );
        prop_assert!(store == fresh, "the store holds exactly the nodes of the tree built from nothing");
        for (k, v) in &all {
            prove(&store, k).expect("provable").verify(&out.root, k, Some(v)).expect("inclusion verifies");
        }
        for absent in 0..8u16 {
            let k = key(65_000 + absent);
            prove(&store, &k).expect("provable").verify(&out.root, &k, None).expect("absence verifies");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn incremental_updates_match_the_tree_built_from_nothing(
        batches in prop::collection::vec(prop::collection::vec((0u16..48, proptest::option::weighted(0.7, 0u16..4)), 0..24), 1..8)
    ) {
        run(&batches)?;
    }
}

#[test]
fn removing_every_entry_leaves_an_empty_store() {
    let add: Vec<(u16, Option<u16>)> = (0..200).map(|i| (i, Some(i))).collect();
    let remove: Vec<(u16, Option<u16>)> = (0..200).map(|i| (i, None)).collect();
    run(&[add, remove]).expect("the invariants hold");
}

#[test]
fn removing_an_absent_key_writes_nothing() {
    let mut store = HashMap::new();
    let out =
        update(&store, &[(key(1), Some(value(1))), (key(2), Some(value(2)))]).expect("the store holds every node");
    apply_changes(&mut store, &out.nodes);
    let out2 = update(&store, &[(key(3), None)]).expect("the store holds every node");
    assert_eq!(out2.root, out.root);
    assert!(out2.nodes.is_empty(), "no write for an absent key: {:?}", out2.nodes);
}

fn tree_of(n: u16) -> (HashMap<NodeKey, Node>, Hash) {
    let mut store = HashMap::new();
    let changes: Vec<_> = (0..n).map(|i| (key(i), Some(value(i)))).collect();
    let out = update(&store, &changes).expect("the store holds every node");
    apply_changes(&mut store, &out.nodes);
    (store, out.root)
}

#[test]
fn a_proof_does_not_prove_another_value_or_absence_of_a_present_key() {
    let (store, root) = tree_of(100);
    let proof = prove(&store, &key(5)).expect("provable");
    assert_eq!(proof.verify(&root, &key(5), Some(&value(6))), Err(ProofError::WrongLeaf));
    assert_eq!(proof.verify(&root, &key(5), None), Err(ProofError::WrongLeaf));
    // The present key's own leaf passed off as another key's, to claim absence.
    let Terminal::Leaf { value_hash, .. } = proof.terminal else { panic!("a present key ends at its leaf") };
    let forged = Proof { siblings: proof.siblings.clone(), terminal: Terminal::Leaf { key: key(6), value_hash } };
    assert!(forged.verify(&root, &key(5), None).is_err());
    // One sibling changed.
    let mut bent = proof.clone();
    bent.siblings[0].0[0] ^= 1;
    assert!(matches!(bent.verify(&root, &key(5), Some(&value(5))), Err(ProofError::WrongRoot { .. })));
    // Too deep.
    let deep = Proof { siblings: vec![Hash::ZERO; 257], terminal: proof.terminal };
    assert_eq!(deep.verify(&root, &key(5), Some(&value(5))), Err(ProofError::TooDeep(257)));
}

#[test]
fn absence_through_another_leaf_needs_that_leaf_on_the_keys_path() {
    let (store, root) = tree_of(2);
    // With two entries the root is inner and each leaf sits at depth 1; a key absent from the
    // tree ends at one of them (or at an empty side).
    let absent =
        (100..400u16).map(key).find(|k| matches!(prove(&store, k).expect("provable").terminal, Terminal::Leaf { .. }));
    let absent = absent.expect("some absent key shares its first bit with an entry");
    let proof = prove(&store, &absent).expect("provable");
    proof.verify(&root, &absent, None).expect("the proof verifies");
    // The same proof offered for a key on the other side of the root is refused.
    let other_side =
        (400..700u16).map(key).find(|k| (k.0[0] >> 7) != (absent.0[0] >> 7)).expect("half the keys go the other way");
    assert!(proof.verify(&root, &other_side, None).is_err());
}

#[test]
fn a_layer_of_pending_changes_reads_as_the_tree_after_them() {
    let (store, _) = tree_of(50);
    let first = update(&store, &[(key(3), None), (key(60), Some(value(1)))]).expect("the store holds every node");
    let layers: Vec<&NodeChanges> = vec![&first.nodes];
    let over = Layered { base: &store, layers };
    let second = update(&over, &[(key(61), Some(value(2)))]).expect("the store holds every node");
    let mut direct = store.clone();
    apply_changes(&mut direct, &first.nodes);
    apply_changes(&mut direct, &second.nodes);
    let expected: Vec<(Hash, Hash)> = (0..50u16)
        .filter(|i| *i != 3)
        .map(|i| (key(i), value(i)))
        .chain([(key(60), value(1)), (key(61), value(2))])
        .collect();
    assert_eq!(second.root, root_of(&expected));
    assert_eq!(over.node(&NodeKey::ROOT).map(|n| n.hash()), Some(first.root));
    let mut fresh = HashMap::new();
    let all: Vec<_> = expected.iter().map(|(k, v)| (*k, Some(*v))).collect();
    apply_changes(&mut fresh, &update(&HashMap::new(), &all).expect("the store holds every node").nodes);
    assert_eq!(direct, fresh);
}

#[test]
fn state_tree_vector_matches_the_documented_root() {
    // docs/state-tree.md gives this vector: keys 0x00..00 / 0x80..00 / 0xc0..00 with value hashes
    // 0x01.. / 0x02.. / 0x03..: the first sits left of the root, the other two split at depth 1.
    let k = |b: u8| {
        let mut h = [0u8; 32];
        h[0] = b;
        Hash(h)
    };
    let v = |b: u8| Hash([b; 32]);
    let entries = [(k(0x00), v(1)), (k(0x80), v(2)), (k(0xc0), v(3))];
    let right = inner_hash(&leaf_hash(&k(0x80), &v(2)), &leaf_hash(&k(0xc0), &v(3)));
    let root = inner_hash(&leaf_hash(&k(0x00), &v(1)), &right);
    assert_eq!(root_of(&entries), root);
    let mut store = HashMap::new();
    let out = update(&store, &entries.map(|(k, v)| (k, Some(v)))).expect("the store holds every node");
    apply_changes(&mut store, &out.nodes);
    assert_eq!(out.root, root);
    assert_eq!(
        root.to_hex(),
        "0x6db5349e21fdf0ab71ae513ab5c910c2b635f7e27ed3a16b48d58f4ff658a623",
        "the documented vector"
    );
}

#[test]
fn an_empty_tree_has_the_zero_root_and_proves_absence() {
    let store = HashMap::new();
    let out = update(&store, &[]).expect("the store holds every node");
    assert_eq!(out.root, Hash::ZERO);
    let proof = prove(&store, &key(1)).expect("provable");
    assert_eq!(proof, Proof { siblings: vec![], terminal: Terminal::Empty });
    proof.verify(&Hash::ZERO, &key(1), None).expect("the proof verifies");
}

#[test]
fn one_entry_is_its_leaf_at_the_root() {
    let mut store = HashMap::new();
    let out = update(&store, &[(key(1), Some(value(1)))]).expect("the store holds every node");
    apply_changes(&mut store, &out.nodes);
    assert_eq!(out.root, leaf_hash(&key(1), &value(1)));
    assert_eq!(store.len(), 1);
}

#[test]
fn node_keys_round_trip_and_refuse_stray_bits() {
    let k = NodeKey::of(&key(7), 13);
    assert_eq!(NodeKey::from_bytes(&k.to_bytes()), Some(k));
    let mut bytes = k.to_bytes();
    bytes[33] = 1;
    assert_eq!(NodeKey::from_bytes(&bytes), None, "a bit beyond the depth");
    let mut deep = NodeKey::ROOT.to_bytes();
    deep[..2].copy_from_slice(&257u16.to_be_bytes());
    assert_eq!(NodeKey::from_bytes(&deep), None);
}

#[test]
fn removing_an_entry_moves_its_sibling_leaf_up() {
    let mut store = HashMap::new();
    let out =
        update(&store, &[(key(1), Some(value(1))), (key(2), Some(value(2)))]).expect("the store holds every node");
    apply_changes(&mut store, &out.nodes);
    assert!(store.len() >= 3, "an inner node per bit the two keys share, and two leaves");
    let out = update(&store, &[(key(2), None)]).expect("the store holds every node");
    apply_changes(&mut store, &out.nodes);
    assert_eq!(out.root, leaf_hash(&key(1), &value(1)));
    assert_eq!(store.len(), 1, "only the remaining leaf, at the root");
}

#[test]
fn a_large_update_on_two_threads_gives_the_tree_built_from_nothing() {
    // Above the parallel threshold (1024 changes) the root's halves update on two threads.
    let first: Vec<(u16, Option<u16>)> = (0..3000).map(|i| (i, Some(i % 5))).collect();
    let second: Vec<(u16, Option<u16>)> =
        (0..2500).map(|i| if i % 3 == 0 { (i, None) } else { (i + 2000, Some(i % 7)) }).collect();
    // Removing all but one entry collapses the root to a leaf, through both halves at once.
    let third: Vec<(u16, Option<u16>)> = (0..4500).filter(|i| *i != 4).map(|i| (i, None)).collect();
    run(&[first, second, third]).expect("the invariants hold");
}
