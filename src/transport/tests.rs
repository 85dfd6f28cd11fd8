//! Known-answer, round-trip and hostile-input tests of the transports.

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};

use super::*;
use crate::buf::FrameBuf;

const KINDS: [TransportKind; 4] = [
    TransportKind::Abridged,
    TransportKind::Intermediate,
    TransportKind::PaddedIntermediate,
    TransportKind::Full,
];

/// Every transport, plain and (where defined) obfuscated.
const CONFIGS: [(TransportKind, bool); 7] = [
    (TransportKind::Abridged, false),
    (TransportKind::Intermediate, false),
    (TransportKind::PaddedIntermediate, false),
    (TransportKind::Full, false),
    (TransportKind::Abridged, true),
    (TransportKind::Intermediate, true),
    (TransportKind::PaddedIntermediate, true),
];

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn client(kind: TransportKind, obfuscated: bool, r: &mut ChaCha20Rng) -> ClientCodec {
    if obfuscated {
        ClientCodec::obfuscated(kind, obfuscation_init(r), 2).unwrap()
    } else {
        ClientCodec::new(kind)
    }
}

fn encode(c: &mut ClientCodec, payload: &[u8], quick_ack: bool, r: &mut ChaCha20Rng) -> Vec<u8> {
    let mut buf = FrameBuf::from_payload(payload);
    if quick_ack {
        c.encode_with_quick_ack(&mut buf, r);
    } else {
        c.encode(&mut buf, r);
    }
    buf.into_vec()
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Packet(Vec<u8>),
    QuickAck(u32),
    Error(i32),
}

fn drain_client(c: &mut ClientCodec, out: &mut Vec<Ev>) -> Result<(), Error> {
    while let Some(f) = c.next_frame() {
        out.push(match f? {
            Frame::Packet(p) => Ev::Packet(p.to_vec()),
            Frame::QuickAck(t) => Ev::QuickAck(t),
            Frame::TransportError(e) => Ev::Error(e),
        });
    }
    Ok(())
}

/// As [`drain_client`], taking packets `max` at a time with `next_packets`
/// wherever it gives any.
fn drain_client_batched(c: &mut ClientCodec, out: &mut Vec<Ev>, max: usize) -> Result<(), Error> {
    loop {
        let mut batch: [&mut [u8]; crate::crypto::PARALLEL_MESSAGES] = Default::default();
        let n = c.next_packets(&mut batch[..max]);
        if n > 0 {
            out.extend(batch[..n].iter().map(|p| Ev::Packet(p.to_vec())));
            continue;
        }
        match c.next_frame() {
            None => return Ok(()),
            Some(f) => out.push(match f? {
                Frame::Packet(p) => Ev::Packet(p.to_vec()),
                Frame::QuickAck(t) => Ev::QuickAck(t),
                Frame::TransportError(e) => Ev::Error(e),
            }),
        }
    }
}

fn drain_server(d: &mut ServerDecoder, out: &mut Vec<(Vec<u8>, bool)>) -> Result<(), Error> {
    loop {
        let p = match d.next_frame() {
            None => return Ok(()),
            Some(Err(e)) => return Err(e),
            Some(Ok(Frame::Packet(p))) => p.to_vec(),
            Some(Ok(other)) => panic!("server decoder yielded {other:?}"),
        };
        out.push((p, d.quick_ack_requested()));
    }
}

/// A received padded intermediate packet is the payload plus 0..=15 bytes.
fn same_packet(kind: TransportKind, sent: &[u8], got: &[u8]) -> bool {
    if kind == TransportKind::PaddedIntermediate {
        got.starts_with(sent) && got.len() - sent.len() <= 15
    } else {
        got == sent
    }
}

#[derive(Clone, Debug)]
enum Chunking {
    OneByte,
    All,
    Sizes(Vec<usize>),
}

fn split(bytes: &[u8], chunking: &Chunking, mut f: impl FnMut(&[u8])) {
    match chunking {
        Chunking::OneByte => bytes.chunks(1).for_each(f),
        Chunking::All => f(bytes),
        Chunking::Sizes(sizes) => {
            let mut rest = bytes;
            for &n in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (a, b) = rest.split_at(n.min(rest.len()));
                f(a);
                rest = b;
            }
        }
    }
}

// ---------------------------------------------------------------- known answers

#[test]
fn abridged_headers() {
    let mut r = rng(1);
    let mut c = ClientCodec::new(TransportKind::Abridged);
    let p = [1u8; 4];
    assert_eq!(
        encode(&mut c, &p, false, &mut r),
        [&[0xef, 0x01][..], &p].concat()
    );
    // One-byte form up to 0x7e words; no 0xef after the first frame.
    let p = vec![2u8; 0x7e * 4];
    assert_eq!(
        encode(&mut c, &p, false, &mut r),
        [&[0x7e][..], &p].concat()
    );
    // 0x7f words switch to the 4-byte form.
    let p = vec![3u8; 0x7f * 4];
    assert_eq!(
        encode(&mut c, &p, false, &mut r),
        [&[0x7f, 0x7f, 0, 0][..], &p].concat()
    );
    let p = vec![4u8; 0x12345 * 4];
    assert_eq!(
        encode(&mut c, &p, false, &mut r),
        [&[0x7f, 0x45, 0x23, 0x01][..], &p].concat()
    );
    // Quick ack: the high bit of the first header byte.
    let p = [5u8; 4];
    assert_eq!(encode(&mut c, &p, true, &mut r), [&[0x81][..], &p].concat());
    let p = vec![6u8; 0x7f * 4];
    assert_eq!(
        encode(&mut c, &p, true, &mut r),
        [&[0xff, 0x7f, 0, 0][..], &p].concat()
    );
}

#[test]
fn intermediate_headers() {
    let mut r = rng(2);
    let mut c = ClientCodec::new(TransportKind::Intermediate);
    let p = [7u8; 8];
    assert_eq!(
        encode(&mut c, &p, false, &mut r),
        [&[0xee, 0xee, 0xee, 0xee, 8, 0, 0, 0][..], &p].concat()
    );
    let p = vec![8u8; 0x1234];
    assert_eq!(
        encode(&mut c, &p, true, &mut r),
        [&[0x34, 0x12, 0, 0x80][..], &p].concat()
    );
}

#[test]
fn padded_intermediate_headers_and_padding() {
    let mut r = rng(3);
    let mut c = ClientCodec::new(TransportKind::PaddedIntermediate);
    let p = [9u8; 8];
    let first = encode(&mut c, &p, false, &mut r);
    assert_eq!(first[..4], [0xdd; 4]);
    let mut seen = [false; 16];
    let mut check = |wire: &[u8], quick_ack: bool| {
        let tlen = u32::from_le_bytes(wire[..4].try_into().unwrap());
        assert_eq!(tlen & 0x8000_0000 != 0, quick_ack);
        let tlen = (tlen & 0x7fff_ffff) as usize;
        assert_eq!(tlen, wire.len() - 4);
        assert_eq!(wire[4..12], p);
        seen[tlen - p.len()] = true;
    };
    check(&first[4..], false);
    for i in 0..400 {
        check(&encode(&mut c, &p, i % 2 == 0, &mut r), i % 2 == 0);
    }
    assert!(
        seen.iter().all(|&s| s),
        "every padding length 0..=15 occurs"
    );
}

#[test]
fn full_headers() {
    // CRC32 values computed independently (Python's zlib.crc32).
    let mut r = rng(4);
    let mut c = ClientCodec::new(TransportKind::Full);
    assert_eq!(
        encode(&mut c, &[1, 2, 3, 4], false, &mut r),
        hex("100000000000000001020304420fb5e0")
    );
    assert_eq!(
        encode(&mut c, &[5, 6, 7, 8, 9, 10, 11, 12], false, &mut r),
        hex("140000000100000005060708090a0b0cb86a90d9")
    );
    // The quick-ack bit is part of the length the CRC covers.
    let mut c = ClientCodec::new(TransportKind::Full);
    assert_eq!(
        encode(&mut c, &[1, 2, 3, 4], true, &mut r),
        hex("1000008000000000010203040d0fe086")
    );
}

#[test]
fn obfuscated_known_answer() {
    // Reference bytes from an independent AES-256-CTR (Python `cryptography`).
    let mut init = [0u8; 64];
    for (i, b) in init.iter_mut().enumerate() {
        *b = i as u8;
    }
    let mut r = rng(5);
    let mut c = ClientCodec::obfuscated(TransportKind::Intermediate, init, -2).unwrap();
    assert!(c.is_obfuscated());
    assert_eq!(
        encode(&mut c, &[0xaa; 8], false, &mut r),
        hex(concat!(
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            "202122232425262728292a2b2c2d2e2f30313233343536374618255ee0fffd5d",
            "3aa9c128925bcfeb881b3a17"
        ))
    );
    // Server to client: transport error -404, quick ack, then a packet.
    c.feed(&hex("2b9de370b232f9bf91da336202267b698468e3e8b065d523"));
    let mut got = Vec::new();
    drain_client(&mut c, &mut got).unwrap();
    assert_eq!(
        got,
        [
            Ev::Error(-404),
            Ev::QuickAck(0x8102_0304),
            Ev::Packet(vec![0x55; 8])
        ]
    );
}

#[test]
fn obfuscated_header_carries_tag_and_dc() {
    let mut r = rng(6);
    for kind in KINDS {
        if kind == TransportKind::Full {
            let init = obfuscation_init(&mut r);
            assert_eq!(
                ClientCodec::obfuscated(kind, init, 2).unwrap_err(),
                Error::Unsupported(TransportKind::Full)
            );
            continue;
        }
        let mut c = ClientCodec::obfuscated(kind, obfuscation_init(&mut r), -10004).unwrap();
        let wire = encode(&mut c, &[1; 32], false, &mut r);
        let mut s = ServerDecoder::new();
        s.feed(&wire);
        assert_eq!(s.kind(), Some((kind, true)));
        assert_eq!(s.dc_id(), Some(-10004));
        let mut got = Vec::new();
        drain_server(&mut s, &mut got).unwrap();
        assert_eq!(got.len(), 1);
        assert!(same_packet(kind, &[1; 32], &got[0].0));
    }
}

#[test]
fn obfuscated_rejects_init_that_looks_like_another_protocol() {
    let mut r = rng(7);
    let good = obfuscation_init(&mut r);
    let k = TransportKind::Abridged;
    let mut bad = good;
    bad[0] = 0xef;
    assert_eq!(
        ClientCodec::obfuscated(k, bad, 1).unwrap_err(),
        Error::InvalidInit
    );
    for start in [
        *b"HEAD",
        *b"POST",
        *b"GET ",
        *b"OPTI",
        [0xdd; 4],
        [0xee; 4],
        [0x16, 3, 1, 2],
    ] {
        let mut bad = good;
        bad[..4].copy_from_slice(&start);
        assert_eq!(
            ClientCodec::obfuscated(k, bad, 1).unwrap_err(),
            Error::InvalidInit
        );
    }
    let mut bad = good;
    bad[4..8].fill(0);
    assert_eq!(
        ClientCodec::obfuscated(k, bad, 1).unwrap_err(),
        Error::InvalidInit
    );
}

/// Replays fixed 64-byte draws.
struct Scripted(Vec<[u8; 64]>);

impl RngCore for Scripted {
    fn next_u32(&mut self) -> u32 {
        unreachable!("obfuscation_init draws whole 64-byte blocks")
    }
    fn next_u64(&mut self) -> u64 {
        unreachable!("obfuscation_init draws whole 64-byte blocks")
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.copy_from_slice(&self.0.remove(0));
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Scripted {}

#[test]
fn obfuscation_init_redraws_rejected_headers() {
    let good = [0x42u8; 64];
    let mut draws = vec![];
    for start in [
        [0xef, 1, 2, 3],
        *b"HEAD",
        *b"POST",
        *b"GET ",
        *b"OPTI",
        [0xdd; 4],
        [0xee; 4],
        [0x16, 3, 1, 2],
    ] {
        let mut d = good;
        d[..4].copy_from_slice(&start);
        draws.push(d);
    }
    let mut zero_seq = good;
    zero_seq[4..8].fill(0);
    draws.push(zero_seq);
    draws.push(good);
    let mut rng = Scripted(draws);
    assert_eq!(obfuscation_init(&mut rng), good);
    assert!(rng.0.is_empty());
}

struct Zeros;
impl RngCore for Zeros {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(0);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        dest.fill(0);
        Ok(())
    }
}
impl CryptoRng for Zeros {}

#[test]
#[should_panic(expected = "rejected headers")]
fn obfuscation_init_gives_up_on_a_broken_generator() {
    obfuscation_init(&mut Zeros);
}

#[test]
fn client_decodes_each_header_form() {
    let body = |n: usize| (0..n).map(|i| i as u8).collect::<Vec<u8>>();
    let cases: [(TransportKind, Vec<u8>, Vec<Ev>); 9] = [
        (
            TransportKind::Abridged,
            [&[0x05][..], &body(20)].concat(),
            vec![Ev::Packet(body(20))],
        ),
        (
            TransportKind::Abridged,
            [&[0x7f, 0x7f, 0, 0][..], &body(508)].concat(),
            vec![Ev::Packet(body(508))],
        ),
        (
            TransportKind::Abridged,
            vec![0x81, 0x02, 0x03, 0x04, 0x01, 0x53, 0xfe, 0xff, 0xff],
            vec![Ev::QuickAck(0x8102_0304), Ev::Error(-429)],
        ),
        (
            TransportKind::Intermediate,
            [&[20, 0, 0, 0][..], &body(20)].concat(),
            vec![Ev::Packet(body(20))],
        ),
        (
            TransportKind::Intermediate,
            vec![4, 3, 2, 0x81, 4, 0, 0, 0, 0x44, 0xfe, 0xff, 0xff],
            vec![Ev::QuickAck(0x8102_0304), Ev::Error(-444)],
        ),
        (
            TransportKind::PaddedIntermediate,
            [&[23, 0, 0, 0][..], &body(23)].concat(),
            vec![Ev::Packet(body(23))],
        ),
        (
            // A padded transport error, and a bare quick ack.
            TransportKind::PaddedIntermediate,
            vec![7, 0, 0, 0, 0x6c, 0xfe, 0xff, 0xff, 9, 9, 9, 4, 3, 2, 0x81],
            vec![Ev::Error(-404), Ev::QuickAck(0x8102_0304)],
        ),
        (
            TransportKind::Full,
            [
                hex("10000000000000006cfeffff0d2f4107"),
                vec![4, 3, 2, 0x81],
                hex("140000000100000005060708090a0b0cb86a90d9"),
            ]
            .concat(),
            vec![
                Ev::Error(-404),
                Ev::QuickAck(0x8102_0304),
                Ev::Packet(vec![5, 6, 7, 8, 9, 10, 11, 12]),
            ],
        ),
        (
            // A non-negative 4-byte payload is not a transport error.
            TransportKind::Intermediate,
            vec![4, 0, 0, 0, 1, 0, 0, 0],
            vec![Ev::Packet(vec![1, 0, 0, 0])],
        ),
    ];
    for (kind, wire, want) in cases {
        let mut c = ClientCodec::new(kind);
        c.feed(&wire);
        let mut got = Vec::new();
        drain_client(&mut c, &mut got).unwrap();
        assert_eq!(got, want, "{kind:?}");
        assert_eq!(c.buffered(), 0);
    }
}

#[test]
fn server_detects_each_transport() {
    let mut r = rng(8);
    for (kind, obfuscated) in CONFIGS {
        for quick_ack in [false, true] {
            let mut c = client(kind, obfuscated, &mut r);
            let wire = encode(&mut c, &[3; 24], quick_ack, &mut r);
            let mut s = ServerDecoder::new();
            assert_eq!(s.kind(), None);
            assert!(s.encoder().is_none());
            s.feed(&wire);
            assert_eq!(s.kind(), Some((kind, obfuscated)));
            assert_eq!(s.dc_id(), obfuscated.then_some(2));
            let mut got = Vec::new();
            drain_server(&mut s, &mut got).unwrap();
            assert_eq!(got.len(), 1);
            assert!(same_packet(kind, &[3; 24], &got[0].0));
            assert_eq!(got[0].1, quick_ack);
            assert_eq!(s.encoder().map(|e| e.kind()), Some(kind));
            assert!(s.encoder().is_none(), "one encoder per connection");
        }
    }
}

#[test]
fn server_encodes_each_header_form() {
    let mut r = rng(9);
    let open = |first: &[u8]| {
        let mut s = ServerDecoder::new();
        s.feed(first);
        s.encoder().unwrap()
    };
    let mut e = open(&[0xef]);
    let mut buf = FrameBuf::from_payload(&[1; 8]);
    e.encode(&mut buf, &mut r);
    assert_eq!(buf.as_slice(), [&[2][..], &[1; 8]].concat());
    assert_eq!(e.quick_ack(0x8102_0304), [0x81, 2, 3, 4]);
    assert_eq!(e.quick_ack(0x0102_0304), [0x81, 2, 3, 4], "high bit forced");
    assert_eq!(e.transport_error(-404), [1, 0x6c, 0xfe, 0xff, 0xff]);

    let mut e = open(&[0xee; 4]);
    let mut buf = FrameBuf::from_payload(&[1; 8]);
    e.encode(&mut buf, &mut r);
    assert_eq!(buf.as_slice(), [&[8, 0, 0, 0][..], &[1; 8]].concat());
    assert_eq!(e.quick_ack(0x8102_0304), [4, 3, 2, 0x81]);
    assert_eq!(
        e.transport_error(-429),
        [4, 0, 0, 0, 0x53, 0xfe, 0xff, 0xff]
    );

    let mut e = open(&[0xdd; 4]);
    assert_eq!(
        e.transport_error(-444),
        [4, 0, 0, 0, 0x44, 0xfe, 0xff, 0xff]
    );

    let mut e = open(&hex("100000000000000001020304420fb5e0"));
    assert_eq!(
        e.transport_error(-404),
        hex("10000000000000006cfeffff0d2f4107")
    );
    assert_eq!(e.quick_ack(0x8102_0304), [4, 3, 2, 0x81]);
    let mut buf = FrameBuf::from_payload(&[5, 6, 7, 8, 9, 10, 11, 12]);
    e.encode(&mut buf, &mut r);
    assert_eq!(
        buf.as_slice(),
        hex("140000000100000005060708090a0b0cb86a90d9"),
        "a quick ack does not take a seq"
    );
}

// ---------------------------------------------------------------- round trips

fn payload(min_words: usize) -> impl Strategy<Value = Vec<u8>> {
    // Up to 300 words, past the abridged one-byte limit of 0x7e.
    (min_words..=300usize).prop_flat_map(|w| prop::collection::vec(any::<u8>(), w * 4))
}

fn chunking() -> impl Strategy<Value = Chunking> {
    prop_oneof![
        Just(Chunking::OneByte),
        Just(Chunking::All),
        prop::collection::vec(1usize..100, 1..20).prop_map(Chunking::Sizes),
    ]
}

fn server_event() -> impl Strategy<Value = Ev> {
    prop_oneof![
        // At least 20 bytes: a shorter negative-led packet reads as an error.
        3 => payload(5).prop_map(Ev::Packet),
        1 => any::<u32>().prop_map(Ev::QuickAck),
        1 => (i32::MIN..0).prop_map(Ev::Error),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip_both_directions(
        config in 0..CONFIGS.len(),
        seed in any::<u64>(),
        up in prop::collection::vec((payload(1), any::<bool>()), 1..8),
        down in prop::collection::vec(server_event(), 1..8),
        up_chunks in chunking(),
        down_chunks in chunking(),
        drain_each_chunk in any::<bool>(),
        batch in 0..=crate::crypto::PARALLEL_MESSAGES,
    ) {
        let (kind, obfuscated) = CONFIGS[config];
        let mut r = rng(seed);
        let mut c = client(kind, obfuscated, &mut r);

        // Client to server.
        let mut wire = Vec::new();
        for (p, quick_ack) in &up {
            wire.extend(encode(&mut c, p, *quick_ack, &mut r));
        }
        let mut s = ServerDecoder::new();
        let mut got = Vec::new();
        split(&wire, &up_chunks, |chunk| {
            s.feed(chunk);
            if drain_each_chunk {
                drain_server(&mut s, &mut got).unwrap();
            }
        });
        drain_server(&mut s, &mut got).unwrap();
        prop_assert_eq!(s.kind(), Some((kind, obfuscated)));
        prop_assert_eq!(s.buffered(), 0);
        prop_assert_eq!(got.len(), up.len());
        for ((sent, qa), (rcvd, rqa)) in up.iter().zip(&got) {
            prop_assert!(same_packet(kind, sent, rcvd));
            prop_assert_eq!(qa, rqa);
        }

        // Server to client.
        let mut e = s.encoder().unwrap();
        let mut wire = Vec::new();
        for ev in &down {
            match ev {
                Ev::Packet(p) => {
                    let mut buf = FrameBuf::from_payload(p);
                    e.encode(&mut buf, &mut r);
                    wire.extend_from_slice(buf.as_slice());
                }
                Ev::QuickAck(t) => wire.extend(e.quick_ack(*t)),
                Ev::Error(code) => wire.extend(e.transport_error(*code)),
            }
        }
        // batch 0: one frame at a time; otherwise packets up to `batch` at
        // once, which must give the same frames in the same order.
        let mut got = Vec::new();
        let drain = |c: &mut ClientCodec, got: &mut Vec<Ev>| match batch {
            0 => drain_client(c, got),
            n => drain_client_batched(c, got, n),
        };
        split(&wire, &down_chunks, |chunk| {
            c.feed(chunk);
            if drain_each_chunk {
                drain(&mut c, &mut got).unwrap();
            }
        });
        drain(&mut c, &mut got).unwrap();
        prop_assert_eq!(c.buffered(), 0);
        prop_assert_eq!(got.len(), down.len());
        for (sent, rcvd) in down.iter().zip(&got) {
            match (sent, rcvd) {
                (Ev::Packet(a), Ev::Packet(b)) => prop_assert!(same_packet(kind, a, b)),
                (Ev::QuickAck(a), Ev::QuickAck(b)) => prop_assert_eq!(a | 0x8000_0000, *b),
                (a, b) => prop_assert_eq!(a, b),
            }
        }
    }
}

// ---------------------------------------------------------------- hostile input

/// Wire bytes of a client sending `n` packets, with the frame boundaries.
fn client_wire(kind: TransportKind, obfuscated: bool, n: usize) -> (Vec<u8>, Vec<usize>) {
    let mut r = rng(10);
    let mut c = client(kind, obfuscated, &mut r);
    let mut wire = Vec::new();
    let mut ends = Vec::new();
    for i in 0..n {
        wire.extend(encode(
            &mut c,
            &vec![i as u8; 4 * (1 + 70 * i)],
            i == 1,
            &mut r,
        ));
        ends.push(wire.len());
    }
    (wire, ends)
}

#[test]
fn truncated_streams_wait_without_error() {
    for (kind, obfuscated) in CONFIGS {
        let (wire, ends) = client_wire(kind, obfuscated, 3);
        for cut in 0..=wire.len() {
            let mut s = ServerDecoder::new();
            s.feed(&wire[..cut]);
            let mut got = Vec::new();
            drain_server(&mut s, &mut got).unwrap();
            let complete = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(
                got.len(),
                complete,
                "{kind:?} obfuscated={obfuscated} cut={cut}"
            );
            // The rest completes the stream.
            s.feed(&wire[cut..]);
            drain_server(&mut s, &mut got).unwrap();
            assert_eq!(got.len(), 3);
        }
    }
    // Client side, server frames of every form including the long abridged one.
    for (kind, obfuscated) in CONFIGS {
        let (wire, _) = client_wire(kind, obfuscated, 1);
        let mut s = ServerDecoder::new();
        s.feed(&wire);
        let mut e = s.encoder().unwrap();
        let mut r = rng(11);
        let mut down = e.quick_ack(0x8000_0001);
        down.extend(e.transport_error(-404));
        let mut buf = FrameBuf::from_payload(&[7; 600]);
        e.encode(&mut buf, &mut r);
        down.extend_from_slice(buf.as_slice());
        for cut in 0..=down.len() {
            let mut c = client(kind, obfuscated, &mut rng(10));
            c.feed(&down[..cut]);
            let mut got = Vec::new();
            drain_client(&mut c, &mut got).unwrap();
            c.feed(&down[cut..]);
            drain_client(&mut c, &mut got).unwrap();
            assert_eq!(got.len(), 3, "{kind:?} obfuscated={obfuscated} cut={cut}");
        }
    }
}

/// What the hostile-input checks need from either end.
trait Decoder {
    fn put(&mut self, bytes: &[u8]);
    fn next(&mut self) -> Option<Result<(), Error>>;
    fn cap(&self) -> usize;
}

impl Decoder for ClientCodec {
    fn put(&mut self, bytes: &[u8]) {
        self.feed(bytes);
    }
    fn next(&mut self) -> Option<Result<(), Error>> {
        self.next_frame().map(|r| r.map(drop))
    }
    fn cap(&self) -> usize {
        self.capacity()
    }
}

impl Decoder for ServerDecoder {
    fn put(&mut self, bytes: &[u8]) {
        self.feed(bytes);
    }
    fn next(&mut self) -> Option<Result<(), Error>> {
        self.next_frame().map(|r| r.map(drop))
    }
    fn cap(&self) -> usize {
        self.capacity()
    }
}

/// Feeds `bytes` and 1 MiB of junk in one call; expects `good` frames, then
/// `want`, with nothing buffered for the junk, and `want` again after more.
fn assert_rejected(d: &mut dyn Decoder, bytes: &[u8], good: usize, want: &Error) {
    let junk = vec![0x5a; 1 << 20];
    d.put(&[bytes, &junk].concat());
    assert!(d.cap() < 1024, "buffered {} bytes", d.cap());
    for _ in 0..good {
        assert_eq!(d.next(), Some(Ok(())));
    }
    assert_eq!(d.next().as_ref(), Some(&Err(want.clone())));
    d.put(&junk);
    assert!(d.cap() < 1024);
    assert_eq!(
        d.next().as_ref(),
        Some(&Err(want.clone())),
        "the error sticks"
    );
}

/// Envelope bytes made by hand, framed with seq `seq` (no padding).
fn raw_frame(kind: TransportKind, payload: &[u8], seq: u32) -> Vec<u8> {
    let mut buf = FrameBuf::from_payload(payload);
    let mut seq = seq;
    super::framing::frame(kind, &mut buf, false, &mut seq);
    buf.into_vec()
}

/// `raw` as a client would send it first on a new connection: after the
/// opening bytes, and encrypted when obfuscated.
fn client_raw(kind: TransportKind, obfuscated: bool, raw: &[u8]) -> Vec<u8> {
    if !obfuscated {
        return [kind.plain_init(), raw].concat();
    }
    let mut init = obfuscation_init(&mut rng(20));
    init[56..60].copy_from_slice(&kind.obfuscation_tag().unwrap());
    init[60..62].copy_from_slice(&2i16.to_le_bytes());
    let (mut out, _) = super::obfuscated::ciphers(&init);
    let mut sealed = init;
    out.apply(&mut sealed);
    let mut rest = raw.to_vec();
    out.apply(&mut rest);
    [&init[..56], &sealed[56..], &rest].concat()
}

#[test]
fn oversized_frames_fail_before_buffering() {
    use TransportKind::*;
    let max = DEFAULT_MAX_FRAME_LEN;
    let gib = 1u32 << 30;
    let header = |kind| match kind {
        Abridged => (vec![0x7f, 0xff, 0xff, 0xff], 0xff_ffff * 4),
        Intermediate => (gib.to_le_bytes().to_vec(), gib as usize),
        PaddedIntermediate => ((gib + 1).to_le_bytes().to_vec(), gib as usize + 1),
        Full => ((gib + 12).to_le_bytes().to_vec(), gib as usize),
    };
    for kind in KINDS {
        let (h, len) = header(kind);
        let want = Error::FrameTooLong { len, max };
        assert_rejected(&mut ClientCodec::new(kind), &h, 0, &want);
    }
    for (kind, obfuscated) in CONFIGS {
        // A good first frame, so that the full transport is recognised.
        let (h, len) = header(kind);
        let raw = [raw_frame(kind, &[1; 4], 0), h].concat();
        let want = Error::FrameTooLong { len, max };
        let wire = client_raw(kind, obfuscated, &raw);
        assert_rejected(&mut ServerDecoder::new(), &wire, 1, &want);
    }
    // A smaller limit, and a frame just within it.
    let mut c = ClientCodec::new(Intermediate).with_max_frame_len(1000);
    let want = Error::FrameTooLong {
        len: 1004,
        max: 1000,
    };
    assert_rejected(&mut c, &1004u32.to_le_bytes(), 0, &want);
    let mut c = ClientCodec::new(Intermediate).with_max_frame_len(1000);
    c.feed(&1000u32.to_le_bytes());
    c.feed(&[0; 1000]);
    assert!(matches!(c.next_frame(), Some(Ok(Frame::Packet(p))) if p.len() == 1000));
    // Obfuscated: the limit applies to the decrypted header.
    let mut r = rng(12);
    let (wire, _) = client_wire(Intermediate, true, 1);
    let mut s = ServerDecoder::new().with_max_frame_len(64);
    s.feed(&wire[..64]);
    let mut e = s.encoder().unwrap();
    let mut buf = FrameBuf::from_payload(&[0; 68]);
    e.encode(&mut buf, &mut r);
    let mut c = client(Intermediate, true, &mut rng(10)).with_max_frame_len(64);
    c.feed(buf.as_slice());
    assert_eq!(
        c.next_frame(),
        Some(Err(Error::FrameTooLong { len: 68, max: 64 }))
    );
}

#[test]
fn malformed_headers_are_errors() {
    use TransportKind::*;
    let cases: [(TransportKind, Vec<u8>, Error); 9] = [
        (Abridged, vec![0x00], Error::EmptyFrame),
        (Abridged, vec![0x7f, 0, 0, 0], Error::EmptyFrame),
        (Intermediate, vec![0, 0, 0, 0], Error::EmptyFrame),
        (Intermediate, vec![6, 0, 0, 0], Error::Misaligned { len: 6 }),
        (PaddedIntermediate, vec![0, 0, 0, 0], Error::EmptyFrame),
        (Full, hex("0c000000"), Error::EmptyFrame),
        (Full, hex("08000000"), Error::FrameTooShort { len: 8 }),
        (Full, hex("12000000"), Error::Misaligned { len: 18 }),
        (
            Full,
            hex("1000000001000000"),
            Error::BadSeq {
                expected: 0,
                got: 1,
            },
        ),
    ];
    for (kind, bytes, want) in cases {
        // Alone, and after a good frame that must still come out first.
        assert_rejected(&mut ClientCodec::new(kind), &bytes, 0, &want);
        if matches!(want, Error::BadSeq { .. }) {
            continue;
        }
        let good = raw_frame(kind, &[0x10; 20], 0);
        assert_rejected(
            &mut ClientCodec::new(kind),
            &[good, bytes].concat(),
            1,
            &want,
        );
    }
    // Empty frames through the server, after a good one, every config.
    for (kind, obfuscated) in CONFIGS {
        let raw = [raw_frame(kind, &[1; 4], 0), raw_frame(kind, &[], 1)].concat();
        let wire = client_raw(kind, obfuscated, &raw);
        assert_rejected(&mut ServerDecoder::new(), &wire, 1, &Error::EmptyFrame);
    }
}

#[test]
fn partial_abridged_headers_wait() {
    // The 4-byte form cut inside its length, one byte at a time.
    let mut c = ClientCodec::new(TransportKind::Abridged);
    let wire = [&[0x7f, 0x80, 0x00][..], &[0x00], &[9; 512]].concat();
    for (i, b) in wire.iter().enumerate() {
        assert!(c.next_frame().is_none(), "at byte {i}");
        c.feed(&[*b]);
    }
    assert!(matches!(c.next_frame(), Some(Ok(Frame::Packet(p))) if p == [9; 512]));
    // A quick-ack token cut after its first byte.
    c.feed(&[0x80]);
    assert!(c.next_frame().is_none());
    c.feed(&[0, 0, 1]);
    assert_eq!(c.next_frame(), Some(Ok(Frame::QuickAck(0x8000_0001))));
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "not a multiple of 4")]
fn abridged_payload_must_be_whole_words() {
    let mut c = ClientCodec::new(TransportKind::Abridged);
    encode(&mut c, &[1; 5], false, &mut rng(0));
}

#[test]
fn full_transport_bad_crc_and_seq() {
    let good = hex("100000000000000001020304420fb5e0");
    let mut bad_crc = good.clone();
    bad_crc[15] ^= 1;
    let mut c = ClientCodec::new(TransportKind::Full);
    c.feed(&bad_crc);
    assert_eq!(
        c.next_frame(),
        Some(Err(Error::BadCrc {
            expected: 0xe0b5_0f42,
            got: 0xe1b5_0f42
        }))
    );
    c.feed(&good);
    assert!(matches!(c.next_frame(), Some(Err(Error::BadCrc { .. }))));

    // A replayed frame (seq 0 again) after a good one.
    let mut c = ClientCodec::new(TransportKind::Full);
    c.feed(&[good.clone(), good.clone()].concat());
    assert!(matches!(c.next_frame(), Some(Ok(Frame::Packet(_)))));
    assert_eq!(
        c.next_frame(),
        Some(Err(Error::BadSeq {
            expected: 1,
            got: 0
        }))
    );

    // A corrupted payload byte, through the server.
    let mut s = ServerDecoder::new();
    let mut bad = good.clone();
    bad[9] ^= 0x80;
    s.feed(&bad);
    assert!(matches!(s.next_frame(), Some(Err(Error::BadCrc { .. }))));
}

#[test]
fn unknown_obfuscated_tag() {
    let (wire, _) = client_wire(TransportKind::Abridged, true, 1);
    let mut bad = wire[..64].to_vec();
    bad[57] ^= 0x01;
    let mut s = ServerDecoder::new();
    s.feed(&bad[..63]);
    assert_eq!(s.next_frame(), None, "waits for the whole header");
    s.feed(&bad[63..]);
    let Some(Err(Error::UnknownProtocol(tag))) = s.next_frame() else {
        panic!("expected UnknownProtocol");
    };
    assert_eq!(tag, [0xef, 0xee, 0xef, 0xef]);
    s.feed(&wire[64..]);
    assert_eq!(s.next_frame(), Some(Err(Error::UnknownProtocol(tag))));
    assert_eq!(s.kind(), None);
}

#[test]
fn steady_state_buffer_stays_small() {
    let mut r = rng(15);
    for (kind, obfuscated) in CONFIGS {
        let (wire, _) = client_wire(kind, obfuscated, 1);
        let mut s = ServerDecoder::new();
        s.feed(&wire);
        let mut e = s.encoder().unwrap();
        let mut c = client(kind, obfuscated, &mut rng(10));
        let mut buf = FrameBuf::with_capacity(128, 1024);
        for i in 0..2000 {
            buf.clear();
            buf.extend_from_slice(&[i as u8; 400]);
            e.encode(&mut buf, &mut r);
            // Cut each frame in two so a partial frame is always pending.
            let (a, b) = buf.as_slice().split_at(150);
            c.feed(a);
            let mut got = Vec::new();
            drain_client(&mut c, &mut got).unwrap();
            c.feed(b);
            drain_client(&mut c, &mut got).unwrap();
            assert!(c.capacity() <= 2048, "capacity {}", c.capacity());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_or_overbuffer(
        config in 0..CONFIGS.len(),
        prefixed in any::<bool>(),
        garbage in prop::collection::vec(any::<u8>(), 0..3000),
        chunks in chunking(),
        max in prop_oneof![Just(DEFAULT_MAX_FRAME_LEN), 1usize..2000],
    ) {
        let (kind, obfuscated) = CONFIGS[config];
        // The server sees a well-formed opening (so that garbage reaches the
        // decoder of this kind) or garbage from the first byte.
        let mut bytes = if prefixed {
            client_wire(kind, obfuscated, 1).0
        } else {
            Vec::new()
        };
        bytes.extend_from_slice(&garbage);
        let mut s = ServerDecoder::new().with_max_frame_len(max);
        let mut c = client(kind, obfuscated, &mut rng(1)).with_max_frame_len(max);
        let mut fed = 0;
        split(&bytes, &chunks, |chunk| {
            fed += chunk.len();
            s.feed(chunk);
            c.feed(chunk);
            for _ in 0..bytes.len() + 2 {
                match s.next_frame() {
                    Some(Ok(Frame::Packet(p))) => assert!(p.len() <= max),
                    Some(Ok(other)) => panic!("server yielded {other:?}"),
                    None | Some(Err(_)) => break,
                }
            }
            for _ in 0..bytes.len() + 2 {
                match c.next_frame() {
                    Some(Ok(Frame::Packet(p))) => assert!(p.len() <= max),
                    Some(Ok(_)) => {}
                    None | Some(Err(_)) => break,
                }
            }
            assert!(s.buffered() <= fed && c.buffered() <= fed);
            // Pending bytes never exceed one frame plus a header.
            assert!(c.buffered() <= max + 12);
            assert!(s.buffered() <= (max + 12).max(64));
            assert!(c.capacity() <= 2 * fed.max(64));
            assert!(s.capacity() <= 2 * fed.max(64));
        });
    }
}
