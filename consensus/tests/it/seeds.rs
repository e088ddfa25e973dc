//! Running many seeds of a simulation: the seed list (or the one seed to replay), seeds per
//! second, and every failing seed with the command that replays it.
//!
//! `TAKSA_SIM_SEED=N` replays one seed of a test; `TAKSA_SIM_SEEDS=M` scales a default suite of
//! [`DEFAULT_TOTAL`] seeds to about M seeds.

use std::fmt::Debug;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The default suite's total seeds (per simulation), which `TAKSA_SIM_SEEDS` scales.
pub(crate) const DEFAULT_TOTAL: u64 = 1_000;

/// `default` seeds times `factor`, or the share of `TAKSA_SIM_SEEDS` that `default` is of
/// [`DEFAULT_TOTAL`].
pub(crate) fn scaled(default: u64, factor: u64) -> u64 {
    match std::env::var("TAKSA_SIM_SEEDS").ok().and_then(|s| s.parse::<u64>().ok()) {
        Some(total) => (default * total).div_ceil(DEFAULT_TOTAL),
        None => default * factor,
    }
}

/// Runs `count` seeds (or the one in `TAKSA_SIM_SEED`): each seed's scenario comes from `make`
/// (with an RNG derived from the seed and `salt`), then `run` runs it. Prints the name, the
/// seeds per second and `summary` of the outcomes; fails listing every failing seed with its
/// scenario and replay command. Returns the outcomes.
pub(crate) fn run_seeds<S: Debug, O>(
    name: &str,
    count: u64,
    salt: u64,
    make: impl Fn(&mut ChaCha8Rng) -> S,
    run: impl Fn(u64, &S) -> Result<O, String>,
    summary: impl Fn(&[O]) -> String,
) -> Vec<O> {
    let seeds: Vec<u64> = match std::env::var("TAKSA_SIM_SEED") {
        Ok(s) => vec![s.trim().parse().expect("TAKSA_SIM_SEED is a seed number")],
        Err(_) => (0..count).collect(),
    };
    // libtest names each test's thread after the test: the filter that replays it.
    let test = std::thread::current()
        .name()
        .map_or_else(|| name.to_owned(), |t| t.rsplit("::").next().unwrap_or(t).to_owned());
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut outcomes = Vec::with_capacity(seeds.len());
    for &seed in &seeds {
        let sc = make(&mut ChaCha8Rng::seed_from_u64(seed ^ salt));
        match run(seed, &sc) {
            Ok(o) => outcomes.push(o),
            Err(e) => failures.push(format!(
                "seed {seed} failed: {e}\n  scenario: {sc:?}\n  replay: TAKSA_SIM_SEED={seed} cargo test --workspace --test it {test} -- --nocapture --include-ignored"
            )),
        }
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    #[allow(clippy::cast_precision_loss)]
    let rate = seeds.len() as f64 / secs;
    eprintln!("{name}: {} seeds in {secs:.1} s, {rate:.1} seeds/s, {}", seeds.len(), summary(&outcomes));
    assert!(failures.is_empty(), "{} of {} seeds failed:\n{}", failures.len(), seeds.len(), failures.join("\n"));
    outcomes
}
