//! Integration tests of the simulated world: the conformance suite through the real kube-rs
//! client over simulated TCP.

use khaos_sim::conformance;

#[test]
fn conformance_in_simulation() {
    let seed = std::env::var("KHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let filter = std::env::var("KHAOS_CASE").ok();
    let results = conformance::run_simulated(seed, filter, |r| println!("{r}"));
    println!("{}", conformance::summary(&results));
    let failed: Vec<_> = results.iter().filter(|r| r.outcome.is_failed()).map(|r| r.to_string()).collect();
    assert!(failed.is_empty(), "conformance failures (replay: KHAOS_SEED={seed} cargo test -p khaos-sim --test sim):\n{}", failed.join("\n"));
    assert_eq!(results.len(), conformance::case_names().len(), "every case ran");
}
