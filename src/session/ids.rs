//! Message identifiers and sequence numbers.
//!
//! A client msg_id is about `unixtime * 2^32`, divisible by 4, and strictly
//! increasing within a session. Time comes from the caller: the generator
//! holds the unix time matching one `Instant` and adds the monotonic time
//! elapsed since, plus the offset learned from the server.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

/// A point in time given by the caller, as both a monotonic instant and the
/// unix time (seconds and nanoseconds) it corresponds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// The monotonic anchor.
    pub at: Instant,
    /// Unix time at `at`, in nanoseconds.
    pub unix_nanos: i128,
}

impl Clock {
    /// A clock where `at` is `unix` after the Unix epoch.
    pub fn new(at: Instant, unix: Duration) -> Self {
        Self {
            at,
            unix_nanos: unix.as_nanos() as i128,
        }
    }

    /// Unix time in nanoseconds at `now` (earlier instants count as the anchor).
    pub fn unix_nanos_at(&self, now: Instant) -> i128 {
        self.unix_nanos + now.saturating_duration_since(self.at).as_nanos() as i128
    }

    /// Unix time in whole seconds at `now`.
    pub fn unix_secs_at(&self, now: Instant) -> i64 {
        (self.unix_nanos_at(now).div_euclid(1_000_000_000)) as i64
    }
}

/// Unix seconds carried in a msg_id's upper 32 bits.
pub fn msg_id_secs(msg_id: i64) -> i64 {
    msg_id >> 32
}

/// The largest msg_id the clock gives: 2^40 below `i64::MAX`.
const MAX_RAW_ID: i64 = i64::MAX - (1 << 40);

/// Generates the client's msg_ids for one session.
#[derive(Clone, Debug)]
pub struct MsgIdGen {
    clock: Clock,
    /// Server time minus local time, nanoseconds.
    offset_nanos: i128,
    last: i64,
}

impl MsgIdGen {
    /// A generator on `clock` with a known server time offset (seconds).
    pub fn new(clock: Clock, offset_secs: i64) -> Self {
        Self {
            clock,
            offset_nanos: offset_secs as i128 * 1_000_000_000,
            last: 0,
        }
    }

    /// Server time minus local time, in whole seconds (rounded down).
    pub fn offset_secs(&self) -> i64 {
        self.offset_nanos.div_euclid(1_000_000_000) as i64
    }

    /// The server's unix time at `now`, in seconds, as far as we know it.
    pub fn server_secs(&self, now: Instant) -> i64 {
        ((self.clock.unix_nanos_at(now) + self.offset_nanos).div_euclid(1_000_000_000)) as i64
    }

    /// The msg_id the server's clock would give `now`, before monotonicity.
    ///
    /// A time outside what a msg_id can hold (only a correction from an
    /// absurd server msg_id gives one) is clamped to its ends, and the top
    /// end stays [`MAX_RAW_ID`], so that the `+ 4` steps after it cannot
    /// overflow.
    fn raw(&self, now: Instant) -> i64 {
        let nanos = self.clock.unix_nanos_at(now) + self.offset_nanos;
        let secs = nanos
            .div_euclid(1_000_000_000)
            .clamp(0, i128::from(i64::MAX >> 32));
        let frac = nanos.rem_euclid(1_000_000_000) as u64;
        // The low 32 bits are the fraction of the second, scaled to 2^32.
        let low = i128::from((frac << 32) / 1_000_000_000);
        let id = ((secs << 32) | low).min(i128::from(MAX_RAW_ID));
        // Clamped to the i64 range just above.
        id as i64 & !3
    }

    /// A new msg_id: about the server's time, divisible by 4, greater than
    /// every id this generator gave before (since its last correction).
    pub fn next(&mut self, now: Instant) -> i64 {
        let mut id = self.raw(now);
        if id <= self.last {
            // `last` is at most MAX_RAW_ID plus 4 per id given since: 2^38
            // ids without the clock moving before this could overflow.
            id = self.last + 4;
        }
        self.last = id;
        id
    }

    /// Takes the server's time from a msg_id it sent (seconds in the upper
    /// half) as seen at `now`, and restarts the sequence from the corrected
    /// time.
    ///
    /// After `bad_msg_notification` 16 or 17 the refused ids were never
    /// accepted by the server, so the next id is taken from the corrected
    /// clock even when that is lower than the ids already handed out: a
    /// generator that stayed monotonic would keep producing ids that are
    /// too high.
    pub fn correct_from_server(&mut self, now: Instant, server_msg_id: i64) {
        let server_nanos = (server_msg_id >> 32) as i128 * 1_000_000_000
            + (((server_msg_id as u64 & 0xffff_ffff) * 1_000_000_000) >> 32) as i128;
        self.offset_nanos = server_nanos - self.clock.unix_nanos_at(now);
        self.last = 0;
    }

    /// Sets the offset in seconds (from the handshake's server_time), keeping
    /// ids monotonic.
    pub fn set_offset_secs(&mut self, offset_secs: i64) {
        self.offset_nanos = offset_secs as i128 * 1_000_000_000;
    }
}

/// seq_no: twice the number of content-related messages sent before, plus
/// one for a content-related message.
#[derive(Clone, Debug, Default)]
pub struct SeqNo {
    content_sent: i32,
}

impl SeqNo {
    /// The seq_no for the next message.
    pub fn next(&mut self, content_related: bool) -> i32 {
        let seq = self.content_sent.wrapping_mul(2);
        if content_related {
            self.content_sent = self.content_sent.wrapping_add(1);
            seq | 1
        } else {
            seq
        }
    }

    /// Content-related messages counted so far.
    pub fn content_sent(&self) -> i32 {
        self.content_sent
    }

    /// Moves the counter forward (after `bad_msg_notification` 32: seqno
    /// too low) so that later messages carry a higher seq_no.
    pub fn bump(&mut self, by: i32) {
        self.content_sent = self.content_sent.saturating_add(by);
    }
}

/// The hasher of maps keyed by ids this side hands out (its own msg_ids,
/// request and connection ids), instead of SipHash.
///
/// SipHash's random key defends a map whose keys an attacker chooses. Here
/// the peer chooses none: it can only look ids up. The ids count up (by 1,
/// or by 4 for msg_ids: `SHIFT` divides that out), so the low bits, which
/// pick the bucket, are the id itself: consecutive ids land in consecutive
/// buckets, and a burst of requests and their answers in order walk the
/// table like an array instead of missing the cache on every lookup once
/// it outgrows it. The top 7 bits, which the table compares before any key,
/// are mixed from the whole id (SplitMix64's output function), so
/// neighbours do not share them. A lookup of an id that is not there costs
/// at most a probe past the run of ids in flight.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdHasher<const SHIFT: u32>(u64);

/// The hash bits the table compares before any key.
const TAG_BITS: u64 = !0 << 57;

impl<const SHIFT: u32> Hasher for IdHasher<SHIFT> {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        ((self.0 >> SHIFT) & !TAG_BITS) | (x & TAG_BITS)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // One word (every key here) is kept as it is.
        self.0 = self.0.rotate_left(23).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ n;
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }
}

/// A map keyed by ids this side counts up by one (see [`IdHasher`]).
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher<0>>>;

/// A map keyed by this side's msg_ids, which count up by four.
pub(crate) type MsgIdMap<V> = HashMap<i64, V, BuildHasherDefault<IdHasher<2>>>;

/// [`IdMap`] with its values in a [`SlabMap`].
pub(crate) type IdSlabMap<K, V> = SlabMap<K, V, BuildHasherDefault<IdHasher<0>>>;

/// [`MsgIdMap`] with its values in a [`SlabMap`].
pub(crate) type MsgIdSlabMap<V> = SlabMap<i64, V, BuildHasherDefault<IdHasher<2>>>;

/// A map whose values sit densely in one vector, found through a hash
/// index of small entries (key and slot number).
///
/// The tables that hold one entry per request in flight spend most of
/// their memory on empty buckets just after they grow (a hash table is
/// between 44% and 88% full); keeping only the key and a slot number in
/// the table, and the values packed in a vector whose free slots are
/// reused, makes those empty buckets cheap.
pub(crate) struct SlabMap<K, V, S> {
    index: HashMap<K, u32, S>,
    slots: Vec<Option<(K, V)>>,
    free: Vec<u32>,
}

impl<K, V, S: Default> Default for SlabMap<K, V, S> {
    fn default() -> Self {
        Self {
            index: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<K: Copy + Eq + std::hash::Hash, V, S: std::hash::BuildHasher> SlabMap<K, V, S> {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn contains_key(&self, k: &K) -> bool {
        self.index.contains_key(k)
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        let i = *self.index.get(k)?;
        self.slots[i as usize].as_ref().map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let i = *self.index.get(k)?;
        self.slots[i as usize].as_mut().map(|(_, v)| v)
    }

    /// Inserts or replaces; returns the value replaced.
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        use std::collections::hash_map::Entry;
        match self.index.entry(k) {
            Entry::Occupied(e) => self.slots[*e.get() as usize]
                .replace((k, v))
                .map(|(_, old)| old),
            Entry::Vacant(e) => {
                let i = match self.free.pop() {
                    Some(i) => {
                        self.slots[i as usize] = Some((k, v));
                        i
                    }
                    None => {
                        // More than u32::MAX entries would not fit in memory
                        // first.
                        let i = u32::try_from(self.slots.len()).expect("fewer than 2^32 entries");
                        self.slots.push(Some((k, v)));
                        i
                    }
                };
                e.insert(i);
                None
            }
        }
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        let i = self.index.remove(k)?;
        let (_, v) = self.slots[i as usize].take()?;
        if self.is_empty() {
            // Start over densely (capacity kept).
            self.slots.clear();
            self.free.clear();
        } else {
            self.free.push(i);
        }
        Some(v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.slots.iter().flatten().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.slots.iter().flatten().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.slots.iter().flatten().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.slots.iter_mut().flatten().map(|(_, v)| v)
    }

    /// Takes every entry out, in no particular order.
    pub fn drain(&mut self) -> impl Iterator<Item = (K, V)> + '_ {
        self.index.clear();
        self.free.clear();
        self.slots.drain(..).flatten()
    }
}

/// Why an inbound msg_id is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MsgIdError {
    /// Server msg_ids are odd.
    #[error("server msg_id is even")]
    Even,
    /// Outside [-300 s, +30 s] of the server's time.
    #[error("msg_id is {skew_secs} s away from the server's time")]
    OutOfWindow {
        /// msg_id time minus expected server time.
        skew_secs: i64,
    },
    /// Seen before.
    #[error("duplicate msg_id")]
    Duplicate,
    /// Older than every id the window still remembers.
    #[error("msg_id older than the replay window")]
    TooOld,
}

/// Remembers the most recent inbound msg_ids to drop duplicates and replays.
///
/// Two deques of the same ids: in arrival order (to forget the oldest
/// arrival) and sorted (for lookups and the smallest id). Server ids mostly
/// arrive in increasing order, which makes every operation O(1) but the
/// O(log n) lookup; an id out of order costs a shift of at most half the
/// window.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    capacity: usize,
    order: VecDeque<i64>,
    sorted: VecDeque<i64>,
}

impl ReplayWindow {
    /// A window of the last `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            sorted: VecDeque::new(),
        }
    }

    /// Where `msg_id` is in `sorted` (`Ok`), or would go (`Err`). Ids come
    /// near the end (a container's messages just below its own id), so the
    /// last few are tried before a binary search.
    fn find(&self, msg_id: i64) -> Result<usize, usize> {
        let mut at = self.sorted.len();
        for _ in 0..8 {
            match at.checked_sub(1).map(|i| self.sorted[i]) {
                None => return Err(0),
                Some(v) if v == msg_id => return Ok(at - 1),
                Some(v) if v < msg_id => return Err(at),
                Some(_) => at -= 1,
            }
        }
        self.sorted.binary_search(&msg_id)
    }

    /// Checks an inbound id without recording it.
    pub fn check(&self, msg_id: i64) -> Result<(), MsgIdError> {
        if self.find(msg_id).is_ok() {
            return Err(MsgIdError::Duplicate);
        }
        if self.order.len() == self.capacity {
            // Full: anything older than what we still remember might be a
            // replay we can no longer recognise.
            if let Some(&oldest) = self.sorted.front() {
                if msg_id < oldest {
                    return Err(MsgIdError::TooOld);
                }
            }
        }
        Ok(())
    }

    /// Records an accepted id, forgetting the oldest-inserted when full.
    pub fn insert(&mut self, msg_id: i64) {
        match self.find(msg_id) {
            Ok(_) => return,
            Err(at) if at == self.sorted.len() => self.sorted.push_back(msg_id),
            Err(at) => self.sorted.insert(at, msg_id),
        }
        self.order.push_back(msg_id);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                if self.sorted.front() == Some(&old) {
                    self.sorted.pop_front();
                } else if let Ok(at) = self.sorted.binary_search(&old) {
                    self.sorted.remove(at);
                }
            }
        }
    }

    /// Ids remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Every operation agrees with a plain HashMap.
        #[test]
        fn slab_map_behaves_as_a_map(ops in proptest::collection::vec((0u8..4, 0i64..40, proptest::prelude::any::<u16>()), 0..300)) {
            let mut m: MsgIdSlabMap<u16> = SlabMap::default();
            let mut model: HashMap<i64, u16> = HashMap::new();
            for (op, k, v) in ops {
                match op {
                    0 | 1 => proptest::prop_assert_eq!(m.insert(k, v), model.insert(k, v)),
                    2 => proptest::prop_assert_eq!(m.remove(&k), model.remove(&k)),
                    _ => {
                        if let Some(x) = m.get_mut(&k) {
                            *x = v;
                        }
                        if let Some(x) = model.get_mut(&k) {
                            *x = v;
                        }
                    }
                }
                proptest::prop_assert_eq!(m.len(), model.len());
                proptest::prop_assert_eq!(m.get(&k), model.get(&k));
                proptest::prop_assert_eq!(m.contains_key(&k), model.contains_key(&k));
                let mut a: Vec<(i64, u16)> = m.iter().map(|(k, v)| (*k, *v)).collect();
                let mut b: Vec<(i64, u16)> = model.iter().map(|(k, v)| (*k, *v)).collect();
                a.sort_unstable();
                b.sort_unstable();
                proptest::prop_assert_eq!(a, b);
                // Free slots are reused: the vector never outgrows the
                // most entries held at once.
                proptest::prop_assert!(m.slots.len() <= 40);
            }
            let mut drained: Vec<(i64, u16)> = m.drain().collect();
            let mut rest: Vec<(i64, u16)> = model.into_iter().collect();
            drained.sort_unstable();
            rest.sort_unstable();
            proptest::prop_assert_eq!(drained, rest);
            proptest::prop_assert_eq!(m.len(), 0);
        }
    }

    fn clock() -> (Instant, Clock) {
        let t0 = crate::test_util::t0();
        (t0, Clock::new(t0, Duration::from_secs(1_700_000_000)))
    }

    #[test]
    fn msg_ids_track_unix_time_divisible_by_4_and_increase() {
        let (t0, c) = clock();
        let mut g = MsgIdGen::new(c, 0);
        let a = g.next(t0);
        assert_eq!(a >> 32, 1_700_000_000);
        assert_eq!(a % 4, 0);
        let b = g.next(t0);
        assert!(b > a && b % 4 == 0);
        let later = g.next(t0 + Duration::from_millis(1500));
        assert_eq!(later >> 32, 1_700_000_001);
        // Half a second in the low bits: about 2^31.
        assert!(((later & 0xffff_ffff) - (1 << 31)).abs() < 1 << 24);
    }

    #[test]
    fn offset_moves_ids() {
        let (t0, c) = clock();
        let mut g = MsgIdGen::new(c, 100);
        assert_eq!(g.next(t0) >> 32, 1_700_000_100);
        assert_eq!(g.server_secs(t0), 1_700_000_100);
    }

    #[test]
    fn correction_downwards_produces_an_id_in_range() {
        let (t0, c) = clock();
        // Local clock 1000 s fast: every id is too high.
        let mut g = MsgIdGen::new(Clock::new(c.at, Duration::from_secs(1_700_001_000)), 0);
        let too_high = g.next(t0);
        let _ = g.next(t0);
        let server_msg_id = (1_700_000_000_i64 << 32) | 1;
        g.correct_from_server(t0, server_msg_id);
        let fixed = g.next(t0);
        assert!(
            fixed < too_high,
            "the new id must not stay monotonic above the bad one"
        );
        assert!((msg_id_secs(fixed) - 1_700_000_000).abs() <= 1);
        assert_eq!(fixed % 4, 0);
        assert!(g.next(t0) > fixed);
    }

    #[test]
    fn correction_upwards() {
        let (t0, c) = clock();
        let mut g = MsgIdGen::new(c, 0);
        let server_msg_id = (1_700_000_500_i64 << 32) | 1;
        g.correct_from_server(t0 + Duration::from_secs(2), server_msg_id);
        assert_eq!(g.offset_secs(), 498);
        assert_eq!(
            msg_id_secs(g.next(t0 + Duration::from_secs(2))),
            1_700_000_500
        );
    }

    #[test]
    fn seq_numbers() {
        let mut s = SeqNo::default();
        assert_eq!(s.next(false), 0);
        assert_eq!(s.next(true), 1);
        assert_eq!(s.next(true), 3);
        assert_eq!(s.next(false), 4);
        assert_eq!(s.next(true), 5);
        s.bump(10);
        assert_eq!(s.next(false), 26);
    }

    #[test]
    fn replay_window() {
        let mut w = ReplayWindow::new(3);
        for id in [10, 30, 20] {
            w.check(id).unwrap();
            w.insert(id);
        }
        assert_eq!(w.check(20), Err(MsgIdError::Duplicate));
        assert_eq!(w.check(5), Err(MsgIdError::TooOld));
        w.check(25).unwrap();
        w.insert(40); // forgets 10
        assert_eq!(w.len(), 3);
        assert_eq!(w.check(15), Err(MsgIdError::TooOld));
        w.check(25).unwrap();
        assert_eq!(w.check(40), Err(MsgIdError::Duplicate));
    }

    /// The window as first written: a set and the arrival order.
    struct Model {
        capacity: usize,
        order: VecDeque<i64>,
        set: std::collections::BTreeSet<i64>,
    }

    impl Model {
        fn check(&self, id: i64) -> Result<(), MsgIdError> {
            if self.set.contains(&id) {
                return Err(MsgIdError::Duplicate);
            }
            match self.set.first() {
                Some(&min) if self.order.len() == self.capacity && id < min => {
                    Err(MsgIdError::TooOld)
                }
                _ => Ok(()),
            }
        }

        fn insert(&mut self, id: i64) {
            if self.set.insert(id) {
                self.order.push_back(id);
                if self.order.len() > self.capacity {
                    let old = self.order.pop_front().unwrap();
                    self.set.remove(&old);
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn replay_window_matches_the_model(
            capacity in 1usize..12,
            ids in proptest::collection::vec(0i64..40, 0..200),
        ) {
            let mut w = ReplayWindow::new(capacity);
            let mut m = Model { capacity, order: VecDeque::new(), set: Default::default() };
            for id in ids {
                proptest::prop_assert_eq!(w.check(id), m.check(id));
                w.insert(id);
                m.insert(id);
                proptest::prop_assert_eq!(w.len(), m.order.len());
            }
        }
    }

    #[test]
    fn id_hasher_spreads_ids_four_apart() {
        use std::hash::BuildHasher;
        let b = BuildHasherDefault::<IdHasher<2>>::default();
        let base = 0x6000_0000_1234_5670_i64;
        let mut buckets = [0u32; 64];
        let mut tags = std::collections::BTreeSet::new();
        for i in 0..64 * 64 {
            let h = b.hash_one(base + 4 * i);
            buckets[(h & 63) as usize] += 1;
            tags.insert(h >> 57);
        }
        // Consecutive buckets, each as full as the next; the tag bits vary.
        assert!(
            buckets.iter().all(|&n| (32..=96).contains(&n)),
            "{buckets:?}"
        );
        assert!(tags.len() > 100, "{}", tags.len());
    }
}
