//! Allocation bounds on hostile input, measured with a counting allocator:
//! decoders allocate in proportion to the bytes actually present (or to a
//! stated cap), never to a length or count the peer announces.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use mtsender::tl::message::{unpack_gzip, write_gzip_packed, Container, ContainerWriter};
use mtsender::tl::{Deserialize, Object, Reader};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Tests in this file run one at a time so the counters are theirs alone.
static SERIAL: Mutex<()> = Mutex::new(());

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let now = CURRENT.fetch_add(new_size - layout.size(), Ordering::SeqCst) + new_size
                - layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Ordering::SeqCst);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Peak bytes allocated above the starting level while `f` runs.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    f();
    PEAK.load(Ordering::SeqCst) - base
}

#[test]
fn tl_vectors_and_bytes_allocate_by_bytes_present() {
    let _g = SERIAL.lock().unwrap();
    // A boxed Vector<long> claiming 2^31-1 elements with 64 bytes behind it.
    let mut v = 0x1cb5_c415u32.to_le_bytes().to_vec();
    v.extend_from_slice(&i32::MAX.to_le_bytes());
    v.extend_from_slice(&[0u8; 64]);
    let peak = peak_during(|| {
        assert!(Vec::<i64>::from_bytes(&v).is_err());
        assert!(Vec::<Vec<u8>>::from_bytes(&v).is_err());
    });
    assert!(peak < 1024, "peak {peak}");

    // msgs_ack whose vector claims a million ids but holds 16 bytes.
    let mut ack = 0x62d6_b459u32.to_le_bytes().to_vec();
    ack.extend_from_slice(&v);
    let peak = peak_during(|| assert!(Object::from_bytes(&ack).is_err()));
    assert!(peak < 1024, "peak {peak}");

    // Long-form bytes claiming 16 MiB.
    let peak = peak_during(|| {
        assert!(Reader::new(&[254, 255, 255, 255, 1, 2])
            .read_bytes()
            .is_err())
    });
    assert_eq!(peak, 0);
}

#[test]
fn containers_allocate_nothing() {
    let _g = SERIAL.lock().unwrap();
    let mut out = Vec::new();
    let mut w = ContainerWriter::begin(&mut out);
    for i in 0..1024 {
        w.push(&mut out, i, 1, &[1, 0, 0, 0]);
    }
    w.finish(&mut out);
    let peak = peak_during(|| {
        let c = Container::parse(&out).unwrap();
        assert_eq!(c.iter().count(), 1024);
    });
    assert_eq!(peak, 0);
}

#[test]
fn gzip_bomb_allocates_at_most_the_cap() {
    let _g = SERIAL.lock().unwrap();
    let mut body = Vec::new();
    write_gzip_packed(&mut body, &vec![0u8; 256 << 20]);
    let cap = 1 << 20;
    let peak = peak_during(|| assert!(unpack_gzip(&body, cap).is_err()));
    // The output buffer (cap + 1 rounded up by Vec growth) plus the inflater's state.
    assert!(peak <= 2 * cap + (256 << 10), "peak {peak}");
}
