//! The simulation suite: many seeds of `sim::run` for n in {1, 4, 7}, with and without
//! Byzantine mocks, plus replay determinism.
//!
//! `TAKSA_SIM_SEED=N` replays one seed of a test; `TAKSA_SIM_SEEDS=M` scales the default suite
//! (about 1,000 seeds) to about M seeds; `cargo test --workspace --test it -- --ignored
//! sim_slow` runs the slow suite (10x).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::seeds::{self, scaled};
use crate::sim::{self, Byzantine, Scenario};

fn run_seeds(name: &str, count: u64, make: impl Fn(&mut ChaCha8Rng) -> Scenario) {
    let _ = seeds::run_seeds(name, count, 0x5CE7_A810_0000_0000, make, sim::run, |outcomes| {
        let steps: u64 = outcomes.iter().map(|o| o.steps).sum();
        let heal_ms_max = outcomes.iter().map(|o| o.heal_ms).max().unwrap_or(0);
        format!("{steps} engine steps, slowest recovery {heal_ms_max} virtual ms")
    });
}

fn with_byzantine(n: usize, count: usize, rng: &mut ChaCha8Rng) -> Scenario {
    let mut sc = Scenario::random(n, rng);
    let mut nodes: Vec<usize> = (0..n).collect();
    nodes.shuffle(rng);
    let first = *Byzantine::ALL.choose(rng).expect("kinds");
    sc.byzantine = nodes
        .into_iter()
        .take(count)
        .enumerate()
        .map(|(k, i)| {
            // With two, pair the equivocating leader with a double voter half the time: the voter
            // then notarizes and finalizes both of the leader's blocks.
            let kind = if k == 0 {
                first
            } else if rng.gen_bool(0.5) {
                Byzantine::DoubleVoter
            } else {
                *Byzantine::ALL.choose(rng).expect("kinds")
            };
            (i, kind)
        })
        .collect();
    if sc.byzantine.iter().any(|(_, b)| *b == Byzantine::DoubleVoter) && count > 1 {
        sc.byzantine[0].1 = Byzantine::EquivocatingLeader;
    }
    sc
}

fn single(factor: u64) {
    run_seeds("sim_single_validator_survives_crash_restarts", scaled(100, factor), |rng| Scenario::random(1, rng));
}

fn four(factor: u64) {
    run_seeds("sim_four_validators_agree_and_recover_from_faults", scaled(450, factor), |rng| Scenario::random(4, rng));
}

fn seven(factor: u64) {
    run_seeds("sim_seven_validators_agree_and_recover_from_faults", scaled(150, factor), |rng| {
        Scenario::random(7, rng)
    });
}

fn four_byzantine(factor: u64) {
    run_seeds("sim_four_validators_with_one_byzantine", scaled(200, factor), |rng| with_byzantine(4, 1, rng));
}

fn seven_byzantine(factor: u64) {
    run_seeds("sim_seven_validators_with_two_byzantine", scaled(100, factor), |rng| with_byzantine(7, 2, rng));
}

#[test]
fn sim_single_validator_survives_crash_restarts() {
    single(1);
}

#[test]
fn sim_four_validators_agree_and_recover_from_faults() {
    four(1);
}

#[test]
fn sim_seven_validators_agree_and_recover_from_faults() {
    seven(1);
}

#[test]
fn sim_four_validators_with_one_byzantine() {
    four_byzantine(1);
}

#[test]
fn sim_seven_validators_with_two_byzantine() {
    seven_byzantine(1);
}

#[test]
#[ignore = "slow: about 10,000 seeds; run with --ignored"]
fn sim_slow_ten_thousand_seeds() {
    single(10);
    four(10);
    seven(10);
    four_byzantine(10);
    seven_byzantine(10);
}

#[test]
fn same_seed_replays_to_the_same_trace_hash() {
    for (n, seed) in [(1, 3), (4, 11), (7, 5)] {
        let sc = Scenario::random(n, &mut ChaCha8Rng::seed_from_u64(seed));
        let a = sim::run(seed, &sc).expect("runs");
        let b = sim::run(seed, &sc).expect("runs");
        assert_eq!(a, b, "n = {n}, seed {seed} replays differently");
        let c = sim::run(seed + 1, &sc).expect("runs");
        assert_ne!(a.trace_hash, c.trace_hash, "another seed gives another trace");
    }
}
