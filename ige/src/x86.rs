//! Up to [`LANES`] IGE chains at once on AES-NI.
//!
//! Each lane holds one message: its round keys, where it is, and its two
//! chaining blocks. Every step takes one block from every lane through all
//! fourteen rounds, round by round across the lanes, so the AES unit always
//! has independent work. A lane that finishes takes the next job; a lane
//! with no job left works on a scratch block of its own.

use core::arch::x86_64::{
    __m128i, _mm_aesdec_si128, _mm_aesdeclast_si128, _mm_aesenc_si128, _mm_aesenclast_si128,
    _mm_aesimc_si128, _mm_aeskeygenassist_si128, _mm_loadu_si128, _mm_setzero_si128,
    _mm_shuffle_epi32, _mm_slli_si128, _mm_storeu_si128, _mm_xor_si128,
};

use crate::{Job, LANES};

#[derive(Clone, Copy)]
struct Lane {
    /// The next block to process: in a job's buffer, or this lane's scratch.
    ptr: *mut u8,
    /// Bytes `ptr` moves per step: 16 with a job, 0 when idle.
    step: usize,
    /// Blocks left in the job.
    left: usize,
    keys: [__m128i; 15],
    /// The block the cipher produced last (`c` encrypting, `p` decrypting).
    prev_out: __m128i,
    /// The block fed to the cipher last (`p` encrypting, `c` decrypting).
    prev_in: __m128i,
}

/// Runs every job, up to [`LANES`] at a time.
///
/// # Safety
///
/// The CPU must support AES-NI (SSE2 is part of x86_64).
#[target_feature(enable = "aes")]
pub(crate) unsafe fn run<'a>(jobs: impl Iterator<Item = Job<'a>>, encrypt: bool) {
    // Idle lanes read and write here, never in a job's buffer.
    let mut scratch = [0u8; 16 * LANES];
    let scratch = scratch.as_mut_ptr();
    let zero = _mm_setzero_si128();
    let idle = |l: usize| Lane {
        // SAFETY: `l < LANES`, so the block is inside `scratch`.
        ptr: unsafe { scratch.add(16 * l) },
        step: 0,
        left: usize::MAX,
        keys: [zero; 15],
        prev_out: zero,
        prev_in: zero,
    };
    let mut lanes: [Lane; LANES] = core::array::from_fn(idle);
    let mut jobs = jobs.filter(|j| !j.buf.is_empty());
    let mut active = 0;
    loop {
        for (l, lane) in lanes.iter_mut().enumerate() {
            if lane.step != 0 && lane.left == 0 {
                *lane = idle(l);
                active -= 1;
            }
            if lane.step == 0 {
                if let Some(job) = jobs.next() {
                    *lane = start(job, encrypt);
                    active += 1;
                }
            }
        }
        if active == 0 {
            return;
        }
        // Every busy lane has at least this many blocks left.
        let n = lanes.iter().map(|l| l.left).min().unwrap_or(0);
        for _ in 0..n {
            // SAFETY: every busy lane has a block left at `ptr` in its job's
            // buffer (`left >= 1`), which nothing else touches while the job
            // runs; every idle lane points at its own scratch block.
            unsafe {
                if encrypt {
                    step::<true>(&mut lanes);
                } else {
                    step::<false>(&mut lanes);
                }
            }
        }
        for lane in lanes.iter_mut().filter(|l| l.step != 0) {
            lane.left -= n;
        }
    }
}

/// A lane for `job`: its keys (reversed for decryption) and IV.
#[target_feature(enable = "aes")]
fn start(job: Job<'_>, encrypt: bool) -> Lane {
    let Job { buf, key, iv } = job;
    let enc = expand_key(&key);
    let c0 = load16(&iv[..16]);
    let p0 = load16(&iv[16..]);
    let (keys, prev_out, prev_in) = if encrypt {
        (enc, c0, p0)
    } else {
        // The equivalent inverse cipher: the round keys in reverse order,
        // the inner ones through InvMixColumns.
        let mut dec = enc;
        dec[0] = enc[14];
        for r in 1..14 {
            dec[r] = _mm_aesimc_si128(enc[14 - r]);
        }
        dec[14] = enc[0];
        (dec, p0, c0)
    };
    Lane {
        ptr: buf.as_mut_ptr(),
        step: 16,
        left: buf.len() / 16,
        keys,
        prev_out,
        prev_in,
    }
}

/// One block of every lane through AES-256 (decryption when `ENC` is
/// false, with the keys from [`start`]), IGE-chained.
///
/// # Safety
///
/// Each lane's `ptr` must be valid for reading and writing 16 bytes and not
/// overlap another busy lane's.
#[target_feature(enable = "aes")]
unsafe fn step<const ENC: bool>(lanes: &mut [Lane; LANES]) {
    let mut x = [_mm_setzero_si128(); LANES];
    let mut input = x;
    for l in 0..LANES {
        // SAFETY: the caller's promise.
        input[l] = unsafe { _mm_loadu_si128(lanes[l].ptr.cast()) };
        x[l] = _mm_xor_si128(_mm_xor_si128(input[l], lanes[l].prev_out), lanes[l].keys[0]);
    }
    for r in 1..14 {
        for l in 0..LANES {
            x[l] = if ENC {
                _mm_aesenc_si128(x[l], lanes[l].keys[r])
            } else {
                _mm_aesdec_si128(x[l], lanes[l].keys[r])
            };
        }
    }
    for l in 0..LANES {
        let lane = &mut lanes[l];
        let last = if ENC {
            _mm_aesenclast_si128(x[l], lane.keys[14])
        } else {
            _mm_aesdeclast_si128(x[l], lane.keys[14])
        };
        let out = _mm_xor_si128(last, lane.prev_in);
        // SAFETY: the caller's promise; `step` keeps `ptr` within the job's
        // buffer or at most one past its end, never dereferenced there.
        unsafe {
            _mm_storeu_si128(lane.ptr.cast(), out);
            lane.ptr = lane.ptr.add(lane.step);
        }
        lane.prev_out = out;
        lane.prev_in = input[l];
    }
}

#[target_feature(enable = "aes")]
fn load16(bytes: &[u8]) -> __m128i {
    assert_eq!(bytes.len(), 16);
    // SAFETY: 16 bytes, checked above; unaligned loads are allowed.
    unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
}

/// `a ^ (a << 32) ^ (a << 64) ^ (a << 96) ^ t`: one half of the next round
/// key from the same half of the previous one.
#[target_feature(enable = "aes")]
fn mix(a: __m128i, t: __m128i) -> __m128i {
    let a = _mm_xor_si128(a, _mm_slli_si128::<4>(a));
    let a = _mm_xor_si128(a, _mm_slli_si128::<4>(a));
    let a = _mm_xor_si128(a, _mm_slli_si128::<4>(a));
    _mm_xor_si128(a, t)
}

/// The AES-256 key schedule: fifteen round keys.
#[target_feature(enable = "aes")]
fn expand_key(key: &[u8; 32]) -> [__m128i; 15] {
    let mut k = [_mm_setzero_si128(); 15];
    k[0] = load16(&key[..16]);
    k[1] = load16(&key[16..]);
    macro_rules! even {
        ($i:expr, $rcon:expr) => {
            k[$i] = mix(
                k[$i - 2],
                _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<$rcon>(k[$i - 1])),
            );
        };
    }
    macro_rules! odd {
        ($i:expr) => {
            k[$i] = mix(
                k[$i - 2],
                _mm_shuffle_epi32::<0xaa>(_mm_aeskeygenassist_si128::<0>(k[$i - 1])),
            );
        };
    }
    even!(2, 0x01);
    odd!(3);
    even!(4, 0x02);
    odd!(5);
    even!(6, 0x04);
    odd!(7);
    even!(8, 0x08);
    odd!(9);
    even!(10, 0x10);
    odd!(11);
    even!(12, 0x20);
    odd!(13);
    even!(14, 0x40);
    k
}
