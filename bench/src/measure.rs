//! Repetition and medians.

use std::time::Duration;

/// How many times to run each scenario.
#[derive(Clone, Copy, Debug)]
pub struct Reps {
    /// Untimed runs first.
    pub warmup: usize,
    /// Timed runs; the median is reported.
    pub timed: usize,
}

impl Reps {
    /// The full run, or `--quick`.
    pub fn new(quick: bool, full: usize) -> Self {
        if quick {
            Self {
                warmup: 2,
                timed: (full / 5).max(5),
            }
        } else {
            Self {
                warmup: 5,
                timed: full,
            }
        }
    }
}

/// The median.
pub fn median(mut v: Vec<Duration>) -> Duration {
    assert!(!v.is_empty());
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

/// Runs each of `runs` in turn, `reps` rounds, interleaved so that a
/// disturbance hits all of them alike; returns the median of each.
pub fn interleaved(reps: Reps, runs: &mut [&mut dyn FnMut() -> Duration]) -> Vec<Duration> {
    for _ in 0..reps.warmup {
        for r in runs.iter_mut() {
            r();
        }
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(reps.timed); runs.len()];
    for _ in 0..reps.timed {
        for (i, r) in runs.iter_mut().enumerate() {
            times[i].push(r());
        }
    }
    times.into_iter().map(median).collect()
}
