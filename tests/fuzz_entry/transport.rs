//! `transport_client` and `transport_server`: the streaming decoders, fed
//! in chunks the input chooses, with their invariants checked after every
//! chunk.

use mtsender::buf::FrameBuf;
use mtsender::crypto::{AesCtr, PARALLEL_MESSAGES};
use mtsender::transport::{
    obfuscation_init, ClientCodec, Error, Frame, ServerDecoder, ServerEncoder, TransportKind,
    DEFAULT_MAX_FRAME_LEN,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::cursor::{chunks, Cursor};

const KINDS: [TransportKind; 4] = [
    TransportKind::Abridged,
    TransportKind::Intermediate,
    TransportKind::PaddedIntermediate,
    TransportKind::Full,
];

/// Frame length caps to try: the default, the degenerate ones, and small
/// ones that short inputs can reach and pass.
const MAXES: [usize; 8] = [DEFAULT_MAX_FRAME_LEN, 0, 4, 16, 64, 508, 1000, 4096];

/// Header and trailer bytes around a frame body, at most (full transport).
const MAX_OVERHEAD: usize = 12;

/// AES-CTR keyed from bytes 8..40 and 40..56 of `bytes`.
fn cipher_at(bytes: &[u8; 64]) -> AesCtr {
    let mut key = [0u8; 32];
    let mut iv = [0u8; 16];
    key.copy_from_slice(&bytes[8..40]);
    iv.copy_from_slice(&bytes[40..56]);
    AesCtr::new(&key, &iv)
}

/// The server-to-client keystream of an obfuscated connection opened with
/// `init`: keyed from the header reversed.
fn server_cipher(init: &[u8; 64]) -> AesCtr {
    let mut reversed = *init;
    reversed.reverse();
    cipher_at(&reversed)
}

/// What an obfuscated client sends: the header (bytes 56..64 encrypted)
/// and then `payload`, encrypted by the same keystream.
fn obfuscated_client_stream(
    kind: TransportKind,
    init: &[u8; 64],
    dc_id: i16,
    payload: &[u8],
) -> Vec<u8> {
    let mut head = *init;
    head[56..60].copy_from_slice(&kind.obfuscation_tag().expect("not Full"));
    head[60..62].copy_from_slice(&dc_id.to_le_bytes());
    let mut out = head.to_vec();
    out.extend_from_slice(payload);
    cipher_at(&head).apply(&mut out);
    out[..56].copy_from_slice(&head[..56]);
    out
}

/// Errors are fatal: once one is seen, the same one must come back.
fn sticky(failed: &mut Option<Error>, e: Error) {
    if let Some(prev) = failed {
        assert_eq!(*prev, e, "a decoder changed its fatal error");
    }
    *failed = Some(e);
}

/// Every ClientCodec kind (plain and obfuscated), fed the server's stream
/// in input-chosen chunks.
///
/// Layout: `mode` (bits 0-1 kind, bit 2 obfuscated, bits 3-5 frame cap,
/// bits 6-7 how many packets a twin codec takes at once: none (one frame
/// at a time), 2, 3 or 8),
/// `n`, `n % 16` chunk sizes, then the stream as the server means it (it
/// is encrypted here for obfuscated connections, so the input controls
/// the decrypted bytes).
pub fn transport_client(data: &[u8]) {
    let mut c = Cursor::new(data);
    let mode = c.u8();
    let kind = KINDS[usize::from(mode & 3)];
    let obfuscated = mode & 4 != 0 && kind != TransportKind::Full;
    let max = MAXES[usize::from(mode >> 3) % MAXES.len()];
    let n = usize::from(c.u8() % 16);
    let sizes = c.take(n);
    let mut stream = c.rest().to_vec();

    let codec = if obfuscated {
        let init = obfuscation_init(&mut ChaCha20Rng::from_seed([mode; 32]));
        server_cipher(&init).apply(&mut stream);
        ClientCodec::obfuscated(kind, init, 2).expect("obfuscation_init draws valid headers")
    } else {
        ClientCodec::new(kind)
    };
    let mut codec = codec.with_max_frame_len(max);
    assert_eq!(codec.kind(), kind);
    assert_eq!(codec.is_obfuscated(), obfuscated);
    // A twin that takes packets several at a time where it can: it must
    // see the same frames.
    let batch = [0, 2, 3, PARALLEL_MESSAGES][usize::from(mode >> 6)];
    let mut twin = if obfuscated {
        let init = obfuscation_init(&mut ChaCha20Rng::from_seed([mode; 32]));
        ClientCodec::obfuscated(kind, init, 2).expect("obfuscation_init draws valid headers")
    } else {
        ClientCodec::new(kind)
    }
    .with_max_frame_len(max);
    let mut seen = Vec::new();
    let mut twin_seen = Vec::new();

    let mut fed = 0usize;
    let mut out = 0usize;
    let mut failed: Option<Error> = None;
    for chunk in chunks(&stream, sizes) {
        codec.feed(chunk);
        twin.feed(chunk);
        fed += chunk.len();
        loop {
            let frame = codec.next_frame();
            seen.push(match &frame {
                Some(Ok(Frame::Packet(p))) => Ok(Ok(p.to_vec())),
                Some(Ok(Frame::QuickAck(t))) => Ok(Err(i64::from(*t))),
                Some(Ok(Frame::TransportError(e))) => Ok(Err(i64::from(*e) - (1 << 40))),
                Some(Err(e)) => Err(e.clone()),
                None => break,
            });
            match frame {
                None => break,
                Some(Ok(Frame::Packet(p))) => {
                    assert!(failed.is_none(), "a packet after a fatal error");
                    assert!(!p.is_empty(), "empty packet");
                    assert!(p.len() <= max, "packet of {} over the cap {max}", p.len());
                    if kind != TransportKind::PaddedIntermediate {
                        assert_eq!(p.len() % 4, 0, "packet not whole words");
                    }
                    out += p.len();
                    // Packets are decrypted in place by their users.
                    p.fill(0xa5);
                }
                Some(Ok(Frame::QuickAck(token))) => {
                    assert!(failed.is_none(), "a quick ack after a fatal error");
                    assert_ne!(token & 0x8000_0000, 0, "quick ack token without its flag");
                    out += 4;
                }
                Some(Ok(Frame::TransportError(code))) => {
                    assert!(failed.is_none(), "a transport error after a fatal error");
                    assert!(code < 0, "transport error {code} is not negative");
                    out += 4;
                }
                Some(Err(e)) => {
                    sticky(&mut failed, e);
                    break;
                }
            }
        }
        drain_twin(&mut twin, batch, &mut twin_seen);
        assert_eq!(
            seen, twin_seen,
            "frames differ when packets come {batch} at a time"
        );
        assert_eq!(twin.buffered(), codec.buffered());
        assert!(out <= fed, "more frame bytes out than in");
        let buffered = codec.buffered();
        assert!(buffered <= fed - out.min(fed), "buffered bytes never fed");
        assert!(
            buffered <= max + MAX_OVERHEAD,
            "{buffered} bytes buffered after draining, cap {max}"
        );
        if failed.is_some() {
            assert_eq!(buffered, 0, "a failed decoder keeps its buffer");
        }
    }
}

/// A frame as seen: a packet's bytes, or a quick ack / transport error
/// code (apart by range), or an error.
type Seen = Result<Result<Vec<u8>, i64>, Error>;

/// Drains `codec` as the sender does: packets up to `batch` at once where
/// any are complete (never when `batch` is 0), else one frame.
fn drain_twin(codec: &mut ClientCodec, batch: usize, seen: &mut Vec<Seen>) {
    loop {
        let mut packets: [&mut [u8]; PARALLEL_MESSAGES] = Default::default();
        let n = codec.next_packets(&mut packets[..batch]);
        assert!(n <= batch);
        if n > 0 {
            for p in &packets[..n] {
                assert!(!p.is_empty(), "empty packet in a batch");
                seen.push(Ok(Ok(p.to_vec())));
            }
            continue;
        }
        match codec.next_frame() {
            None => return,
            Some(Ok(Frame::Packet(p))) => seen.push(Ok(Ok(p.to_vec()))),
            Some(Ok(Frame::QuickAck(t))) => seen.push(Ok(Err(i64::from(t)))),
            Some(Ok(Frame::TransportError(e))) => seen.push(Ok(Err(i64::from(e) - (1 << 40)))),
            Some(Err(e)) => {
                seen.push(Err(e));
                return;
            }
        }
    }
}

/// The client end a server's replies are checked with.
fn reply_client(kind: TransportKind, init: Option<([u8; 64], i16)>) -> Option<ClientCodec> {
    match init {
        None => Some(ClientCodec::new(kind)),
        Some((init, dc_id)) => ClientCodec::obfuscated(kind, init, dc_id).ok(),
    }
}

/// Sends `packet` back through `enc` to `client`, which must decode it as
/// sent (a transport error if it reads as one), then a quick ack.
fn check_reply(
    enc: &mut ServerEncoder,
    client: &mut ClientCodec,
    packet: &[u8],
    quick_ack: bool,
    rng: &mut ChaCha20Rng,
) {
    let kind = enc.kind();
    let mut buf = FrameBuf::from_payload(packet);
    enc.encode(&mut buf, rng);
    client.feed(buf.as_slice());
    match client.next_frame() {
        Some(Ok(Frame::Packet(got))) => {
            assert!(got.starts_with(packet), "a reply came back altered");
            let pad = got.len() - packet.len();
            if kind == TransportKind::PaddedIntermediate {
                assert!(pad <= 15, "{pad} bytes of transport padding");
            } else {
                assert_eq!(pad, 0, "a reply came back longer");
            }
        }
        Some(Ok(Frame::TransportError(code))) => {
            let limit = if kind == TransportKind::PaddedIntermediate {
                19
            } else {
                4
            };
            assert!(packet.len() <= limit, "a long reply read as an error");
            // A padded packet under 4 bytes reads on into its padding.
            let n = packet.len().min(4);
            assert_eq!(code.to_le_bytes()[..n], packet[..n], "wrong error code");
        }
        other => panic!("a reply of {} bytes decoded as {other:?}", packet.len()),
    }
    assert_eq!(client.buffered(), 0, "a whole reply left bytes behind");
    if quick_ack {
        let token = packet.len() as u32;
        client.feed(&enc.quick_ack(token));
        match client.next_frame() {
            Some(Ok(Frame::QuickAck(t))) => assert_eq!(t, token | 0x8000_0000),
            other => panic!("a quick ack decoded as {other:?}"),
        }
    }
}

/// ServerDecoder's auto-detection and decoding, fed in input-chosen
/// chunks. Every packet is answered through the detected transport's
/// encoder and must decode unchanged at a client end of the same kind.
///
/// Layout: `mode` (bits 0-1: 0 = the stream as is, 1-3 = obfuscated
/// abridged, intermediate or padded intermediate with a header made here;
/// bits 3-5 frame cap), dc_id (2 bytes, obfuscated only), `n`, `n % 16`
/// chunk sizes, then the client's stream (plaintext when the header is
/// made here).
pub fn transport_server(data: &[u8]) {
    let mut c = Cursor::new(data);
    let mode = c.u8();
    let max = MAXES[usize::from(mode >> 3) % MAXES.len()];
    let made = match mode & 3 {
        0 => None,
        k => Some(KINDS[usize::from(k - 1)]),
    };
    let dc_id = c.u16() as i16;
    let n = usize::from(c.u8() % 16);
    let sizes = c.take(n);
    let payload = c.rest();
    let (stream, init) = match made {
        Some(kind) => {
            let init = obfuscation_init(&mut ChaCha20Rng::from_seed([mode; 32]));
            (
                obfuscated_client_stream(kind, &init, dc_id, payload),
                Some(init),
            )
        }
        None => (payload.to_vec(), None),
    };

    let mut dec = ServerDecoder::new().with_max_frame_len(max);
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let mut kind_seen: Option<(TransportKind, bool)> = None;
    let mut replies: Option<(ServerEncoder, Option<ClientCodec>)> = None;
    let mut failed: Option<Error> = None;
    let mut fed = 0usize;
    for chunk in chunks(&stream, sizes) {
        dec.feed(chunk);
        fed += chunk.len();
        if let Some(k) = dec.kind() {
            match kind_seen {
                Some(prev) => assert_eq!(prev, k, "the detected transport changed"),
                None => kind_seen = Some(k),
            }
            if let Some(kind) = made {
                assert_eq!(k, (kind, true), "a made header detected wrongly");
                assert_eq!(dec.dc_id(), Some(dc_id));
            }
        }
        match &replies {
            Some(_) => assert!(dec.encoder().is_none(), "a second encoder"),
            None => {
                if let Some(enc) = dec.encoder() {
                    let (kind, obfuscated) = kind_seen.expect("an encoder before detection");
                    assert_eq!(enc.kind(), kind);
                    let init = match (obfuscated, made, init) {
                        (false, _, _) => None,
                        (true, Some(_), Some(init)) => Some((init, dc_id)),
                        (true, _, _) => {
                            // The header is the stream's first 64 bytes.
                            let mut head = [0u8; 64];
                            head.copy_from_slice(&stream[..64]);
                            Some((head, dec.dc_id().expect("obfuscated has a dc_id")))
                        }
                    };
                    replies = Some((enc, reply_client(kind, init)));
                }
            }
        }
        let mut packets = Vec::new();
        loop {
            match dec.next_frame() {
                None => break,
                Some(Ok(Frame::Packet(p))) => {
                    assert!(failed.is_none(), "a packet after a fatal error");
                    assert!(!p.is_empty(), "empty packet");
                    assert!(p.len() <= max, "packet of {} over the cap {max}", p.len());
                    assert!(p.len() <= fed, "a packet longer than the input");
                    packets.push((p.to_vec(), dec.quick_ack_requested()));
                }
                Some(Ok(other)) => panic!("the server decoder yielded {other:?}"),
                Some(Err(e)) => {
                    sticky(&mut failed, e);
                    break;
                }
            }
        }
        let buffered = dec.buffered();
        assert!(buffered <= fed, "buffered bytes never fed");
        assert!(
            buffered <= (max + MAX_OVERHEAD).max(64),
            "{buffered} bytes buffered after draining, cap {max}"
        );
        if failed.is_some() {
            assert_eq!(buffered, 0, "a failed decoder keeps its buffer");
        }
        if let Some((enc, Some(client))) = &mut replies {
            for (p, quick_ack) in &packets {
                check_reply(enc, client, p, *quick_ack, &mut rng);
            }
        }
    }
}
