use super::*;

/// Schedules per run of [`every_schedule_keeps_the_bound`] (`REVOCATION_SIM_RUNS` overrides).
const RUNS: u64 = 2_000;
/// Schedules of [`fail_closed_keeps_the_bound_through_d1_outages`] (the policy only matters
/// during D1 outages).
const RUNS_FAIL_CLOSED: u64 = 500;
/// Schedules a planted defect may take to show (each is found far sooner in practice).
const HUNT: u64 = 2_000;
const BASE_SEED: u64 = 0x5eed_0f2e_70ca_7e11;

fn seeds(n: u64) -> impl Iterator<Item = u64> {
    (0..n).map(|i| Rng::new(BASE_SEED ^ i.wrapping_mul(0x2545_F491_4F6C_DD1D)).next())
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Runs `n` schedules; returns the failing seeds with their first violation, and the totals.
fn run_many(cfg: &Config, n: u64) -> (Vec<(u64, String)>, Stats) {
    let mut failures = Vec::new();
    let mut total = Stats::default();
    for seed in seeds(n) {
        let out = run(seed, cfg);
        total.add(&out.stats);
        if let Some(v) = out.violations.first() {
            failures.push((seed, v.clone()));
        }
    }
    (failures, total)
}

fn assert_holds(cfg: &Config, name: &str, runs: u64) -> Stats {
    if let Some(seed) = env_u64("REVOCATION_SIM_SEED") {
        let out = run(seed, cfg);
        assert!(
            out.violations.is_empty(),
            "seed {seed:#x}: {:#?}",
            out.violations
        );
        eprintln!("{name}: seed {seed:#x} holds: {:?}", out.stats);
        return out.stats;
    }
    let n = env_u64("REVOCATION_SIM_RUNS").unwrap_or(runs);
    let (failures, total) = run_many(cfg, n);
    if let Some((seed, first)) = failures.first() {
        panic!(
            "{name}: {} of {n} schedules broke the bound; first: seed {seed:#x}: {first}\n\
             all failing seeds: {:x?}\n\
             rerun one: REVOCATION_SIM_SEED={seed:#x} cargo test --locked revocation::sim -- --nocapture",
            failures.len(),
            failures.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        );
    }
    eprintln!("{name}: {n} schedules hold: {total:?}");
    total
}

#[test]
fn every_schedule_keeps_the_bound() {
    let total = assert_holds(&Config::standard(), "fail open", RUNS);
    if env_u64("REVOCATION_SIM_SEED").is_some() {
        return;
    }
    // The schedules exercise what the bound is about, not an easy path around it (per
    // schedule, on average: a run of RUNS gives about 15 of each of the first two).
    let n = total.answers / 250;
    assert!(
        total.saved_by_view > n,
        "the view refused what KV served past the bound: {total:?}"
    );
    assert!(
        total.saved_by_d1 > n,
        "D1 refused what KV served past the bound: {total:?}"
    );
    assert!(
        total.saved_by_grant > n / 4,
        "the view refused an ended grant's token that KV served past the bound: {total:?}"
    );
    assert!(
        total.late_refills > n,
        "refills landed after a death: {total:?}"
    );
    assert!(
        total.from_view > 5 * n,
        "answers from a trusted view: {total:?}"
    );
    assert!(
        total.asked_feed_too_old > 5 * n,
        "fallbacks to D1: {total:?}"
    );
    assert!(
        total.unconfirmed > 0,
        "fail-open answers during D1 outages: {total:?}"
    );
    assert!(
        total.api_uses > 10 * n,
        "cached answers used by APIs: {total:?}"
    );
}

#[test]
fn fail_closed_keeps_the_bound_through_d1_outages() {
    let cfg = Config {
        policy: WhenUnreachable::FailClosed,
        ..Config::standard()
    };
    let total = assert_holds(&cfg, "fail closed", RUNS_FAIL_CLOSED);
    assert_eq!(total.unconfirmed, 0);
}

#[test]
fn schedules_are_deterministic() {
    let cfg = Config::standard();
    for seed in seeds(5) {
        let (a, b) = (run(seed, &cfg), run(seed, &cfg));
        assert_eq!((a.violations, a.stats), (b.violations, b.stats));
    }
}

/// The first schedule in which `cfg` breaks the bound: (its index, seed, violation).
fn hunt(cfg: &Config) -> Option<(usize, u64, String)> {
    seeds(HUNT).enumerate().find_map(|(i, seed)| {
        let first = run(seed, cfg).violations.into_iter().next();
        first.map(|v| (i, seed, v))
    })
}

fn assert_caught(cfg: &Config, defect: &str) {
    let found = hunt(cfg);
    assert!(
        found.is_some(),
        "{HUNT} schedules missed the planted defect: {defect}"
    );
    if let Some((i, seed, v)) = found {
        eprintln!(
            "{defect}: caught by schedule {} (seed {seed:#x}): {v}",
            i + 1
        );
    }
}

#[test]
fn kv_alone_breaks_the_bound() {
    let cfg = Config {
        bug: Bug::NoFeed,
        ..Config::standard()
    };
    assert_caught(&cfg, "no feed (the one-read path alone)");
}

#[test]
fn a_decision_ignoring_the_grant_is_caught() {
    let cfg = Config {
        bug: Bug::NoGrantLookup,
        ..Config::standard()
    };
    assert_caught(
        &cfg,
        "the token's authorization grant not looked up in the view",
    );
}

#[test]
fn a_grace_end_missing_from_the_feed_is_caught() {
    let cfg = Config {
        bug: Bug::GraceEndNotInFeed,
        ..Config::standard()
    };
    assert_caught(
        &cfg,
        "a rotation with a short grace writes no entry for its end",
    );
}

#[test]
fn entries_trimmed_too_early_are_caught() {
    let mut cfg = Config::standard();
    cfg.retention.grant_cache_ms = 30_000;
    cfg.retention.margin_ms = 0;
    assert_caught(&cfg, "entries kept 30 s instead of GRANT_CACHE + margin");
}

#[test]
fn an_unchecked_snapshot_age_is_caught() {
    let mut cfg = Config::standard();
    cfg.params.max_age_ms = i64::MAX / 4;
    assert_caught(&cfg, "snapshot age not checked");
}

#[test]
fn stamping_snapshots_at_arrival_is_caught() {
    let cfg = Config {
        bug: Bug::AsOfAtArrival,
        ..Config::standard()
    };
    assert_caught(&cfg, "as_of = arrival time");
}

#[test]
fn a_max_age_ignoring_the_view_age_is_caught() {
    let cfg = Config {
        bug: Bug::MaxAgeIgnoresViewAge,
        ..Config::standard()
    };
    assert_caught(&cfg, "max-age as if fresh from D1");
}

#[test]
fn ignoring_clock_skew_is_caught() {
    let mut cfg = Config::standard();
    cfg.params.skew_ms = 0;
    cfg.params.max_age_ms = BOUND_MS;
    cfg.skew_max_ms = 2_000;
    assert_caught(&cfg, "no allowance for clocks 2 s apart");
}
