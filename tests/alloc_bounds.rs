//! Allocation bounds on hostile input, measured with a counting allocator:
//! decoders allocate in proportion to the bytes actually present (or to a
//! stated cap), never to a length or count the peer announces.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mtsender::tl::message::{unpack_gzip, write_gzip_packed, Container, ContainerWriter};
use mtsender::tl::{Deserialize, Object, Reader};

struct Counting;

/// Counters of the current thread only: the test harness allocates on its
/// own threads meanwhile.
#[derive(Clone, Copy)]
struct Counters {
    current: isize,
    peak: isize,
    calls: usize,
}

thread_local! {
    static LOCAL: Cell<Counters> = const { Cell::new(Counters { current: 0, peak: 0, calls: 0 }) };
}

fn track(delta: isize, call: bool) {
    // try_with: the allocator also runs while thread-locals are torn down.
    let _ = LOCAL.try_with(|c| {
        let mut v = c.get();
        v.current += delta;
        v.peak = v.peak.max(v.current);
        v.calls += call as usize;
        c.set(v);
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize, true);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize), false);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(new_size as isize - layout.size() as isize, true);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Peak bytes allocated by this thread above its starting level while `f` runs.
fn peak_during(f: impl FnOnce()) -> usize {
    let start = LOCAL.with(|c| {
        let mut v = c.get();
        v.peak = v.current;
        c.set(v);
        v.current
    });
    f();
    (LOCAL.with(|c| c.get().peak) - start) as usize
}

/// Allocation calls made by this thread so far.
fn calls() -> usize {
    LOCAL.with(|c| c.get().calls)
}

#[test]
fn tl_vectors_and_bytes_allocate_by_bytes_present() {
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
    let mut body = Vec::new();
    write_gzip_packed(&mut body, &vec![0u8; 256 << 20]);
    let cap = 1 << 20;
    let peak = peak_during(|| assert!(unpack_gzip(&body, cap).is_err()));
    // The output buffer (cap + 1 rounded up by Vec growth) plus the inflater's state.
    assert!(peak <= 2 * cap + (256 << 10), "peak {peak}");
}

/// The hot path, in steady state: pack a container of requests into a
/// reused buffer, encrypt it, frame it (plain and obfuscated), then decode,
/// decrypt and walk it on the other side, with no allocation at all.
#[test]
fn hot_path_allocates_nothing_in_steady_state() {
    use mtsender::buf::FrameBuf;
    use mtsender::crypto::{
        decrypt_message_in_place, encrypt_message_in_place, strip_transport_padding, AuthKey, Side,
    };
    use mtsender::tl::functions::Ping;
    use mtsender::tl::Serialize;
    use mtsender::transport::{obfuscation_init, ClientCodec, Frame, ServerDecoder, TransportKind};
    use rand_core::SeedableRng;

    let mut rng = rand_chacha::ChaCha20Rng::from_seed([5; 32]);
    let key = AuthKey::from_bytes([9; 256]);
    let codecs = [
        ClientCodec::new(TransportKind::Intermediate),
        ClientCodec::new(TransportKind::Full),
        ClientCodec::obfuscated(
            TransportKind::PaddedIntermediate,
            obfuscation_init(&mut rng),
            2,
        )
        .unwrap(),
    ];
    for mut codec in codecs {
        let mut server = ServerDecoder::new();
        let mut buf = FrameBuf::with_capacity(128, 4096);
        let mut round = |buf: &mut FrameBuf, server: &mut ServerDecoder| {
            buf.clear();
            buf.append_with(|v| {
                v.extend_from_slice(&[0; 32]); // salt, session, msg_id, seq, len
                let mut w = ContainerWriter::begin(v);
                for i in 0..20 {
                    w.push_with(v, i * 4, 1, |v| Ping { ping_id: i }.serialize(v));
                }
                let len = (v.len() - 128 - 32) as u32;
                w.finish(v);
                v[128 + 28..128 + 32].copy_from_slice(&len.to_le_bytes());
            });
            encrypt_message_in_place(&key, Side::Client, buf, &mut rng);
            codec.encode(buf, &mut rng);
            server.feed(buf.as_slice());
            let Some(Ok(Frame::Packet(packet))) = server.next_frame() else {
                panic!("no packet")
            };
            let packet = strip_transport_padding(packet);
            let plain = decrypt_message_in_place(&key, Side::Client, packet).unwrap();
            let c = Container::parse(&plain[32..]).unwrap();
            assert_eq!(c.iter().count(), 20);
        };
        // Warm up: buffers reach their working size.
        for _ in 0..3 {
            round(&mut buf, &mut server);
        }
        let before = calls();
        for _ in 0..200 {
            round(&mut buf, &mut server);
        }
        assert_eq!(calls() - before, 0, "allocations on the hot path");
    }
}
