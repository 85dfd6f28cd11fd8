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

/// CPU time this thread has used. On a shared machine the wall clock also
/// counts the time other processes took the CPU away; this does not.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn thread_cpu_time() -> Duration {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec (64-bit Linux layout) and
    // the clock id is a constant the C library accepts.
    let r = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.sec as u64, ts.nsec as u32)
}

/// Elsewhere: the wall clock since the first call.
#[cfg(not(target_os = "linux"))]
pub fn thread_cpu_time() -> Duration {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

/// Measures the thread's CPU time from its start.
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch(Duration);

impl Stopwatch {
    /// Starts now.
    pub fn start() -> Self {
        Self(thread_cpu_time())
    }

    /// CPU time since the start.
    pub fn elapsed(&self) -> Duration {
        thread_cpu_time().saturating_sub(self.0)
    }
}
