//! The simulation suite: many seeds of `sim::run` for n in {1, 4, 7}, with and without
//! Byzantine mocks, plus replay determinism.
//!
//! `TAKSA_SIM_SEED=N` replays one seed of a test; `TAKSA_SIM_SEEDS=M` scales the default suite
//! (about 1,000 seeds) to about M seeds; `cargo test -p taksa-consensus --test it -- --ignored`
//! runs the slow suite (10x).

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::sim::{self, Byzantine, Scenario};

/// The default suite's total seeds, which `TAKSA_SIM_SEEDS` scales.
const DEFAULT_TOTAL: u64 = 1_000;

fn scaled(default: u64, factor: u64) -> u64 {
    match std::env::var("TAKSA_SIM_SEEDS").ok().and_then(|s| s.parse::<u64>().ok()) {
        Some(total) => (default * total).div_ceil(DEFAULT_TOTAL),
        None => default * factor,
    }
}

/// Runs `count` seeds (or the one in `TAKSA_SIM_SEED`) of scenarios made by `make`; reports
/// seeds per second and every failing seed with its replay command.
fn run_seeds(name: &str, count: u64, make: impl Fn(&mut ChaCha8Rng) -> Scenario) {
    let seeds: Vec<u64> = match std::env::var("TAKSA_SIM_SEED") {
        Ok(s) => vec![s.trim().parse().expect("TAKSA_SIM_SEED is a seed number")],
        Err(_) => (0..count).collect(),
    };
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut steps = 0;
    let mut heal_ms_max = 0;
    for &seed in &seeds {
        let sc = make(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5CE7_A810_0000_0000));
        match sim::run(seed, &sc) {
            Ok(outcome) => {
                steps += outcome.steps;
                heal_ms_max = heal_ms_max.max(outcome.heal_ms);
            }
            Err(e) => failures.push(format!(
                "seed {seed} failed: {e}\n  scenario: {sc:?}\n  replay: TAKSA_SIM_SEED={seed} cargo test -p taksa-consensus --test it {name} -- --nocapture"
            )),
        }
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    #[allow(clippy::cast_precision_loss)]
    let rate = seeds.len() as f64 / secs;
    eprintln!(
        "{name}: {} seeds in {secs:.1} s, {rate:.1} seeds/s, {steps} engine steps, slowest recovery {heal_ms_max} virtual ms",
        seeds.len()
    );
    assert!(failures.is_empty(), "{} of {} seeds failed:\n{}", failures.len(), seeds.len(), failures.join("\n"));
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
