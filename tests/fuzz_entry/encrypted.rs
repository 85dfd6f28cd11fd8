//! `encrypted`: whole encrypted messages, sealed around the input so that
//! it reaches everything past the msg_key check, fed to
//! `decrypt_message_in_place` and to a `Session`.

use std::collections::BTreeSet;
use std::time::Duration;

use mtsender::buf::FrameBuf;
use mtsender::crypto::{
    decrypt_message_in_place, decrypt_messages_in_place, DecryptError, Side, PARALLEL_MESSAGES,
};
use mtsender::session::{Clock, InboundError, ReqId, Session, SessionConfig, SessionEvent};

use super::cursor::Cursor;
use super::peer::Peer;
use super::{fixed_key, t0, UNIX};

/// Most outputs one flush may produce before it counts as a hang.
const MAX_PACKETS_PER_FLUSH: usize = 10_000;

/// The verdict `decrypt_message_in_place` must give a correctly sealed
/// plaintext, from its header fields alone.
fn expected_verdict(plain: &[u8]) -> Result<usize, DecryptError> {
    if plain.len() < 48 {
        return Err(DecryptError::BadLength);
    }
    let msg_len = i32::from_le_bytes([plain[28], plain[29], plain[30], plain[31]]);
    let room = plain.len() - 32;
    let msg_len = match usize::try_from(msg_len) {
        Ok(n) if n % 4 == 0 && n <= room => n,
        _ => return Err(DecryptError::BadMessageLength),
    };
    if !(12..=1024).contains(&(room - msg_len)) {
        return Err(DecryptError::BadPadding);
    }
    Ok(32 + msg_len)
}

struct Run {
    session: Session,
    peer: Peer,
    now: std::time::Instant,
    pushed: u64,
    finished: BTreeSet<ReqId>,
    cancelled: BTreeSet<ReqId>,
    buf: FrameBuf,
    bufs: Vec<FrameBuf>,
    sent: Vec<Vec<u8>>,
    /// Packets held back, to reach the session together.
    held: Vec<Vec<u8>>,
}

impl Run {
    fn server_secs(&self) -> i64 {
        (UNIX + (self.now - t0())).as_secs() as i64
    }

    /// Every packet the session has to send: each must be one the server
    /// can read. `together`: through `poll_packets`, several encrypted at
    /// once.
    fn flush(&mut self, together: bool) {
        let mut n = 0;
        if together {
            loop {
                let got = self.session.poll_packets(self.now, &mut self.bufs);
                assert!(got <= self.bufs.len());
                for buf in &self.bufs[..got] {
                    self.peer
                        .learn(buf.as_slice())
                        .expect("the session's packets are under its key");
                }
                n += got;
                assert!(n <= MAX_PACKETS_PER_FLUSH, "poll_packets does not run dry");
                if got < self.bufs.len() {
                    break;
                }
            }
            return;
        }
        while self.session.poll_packet(self.now, &mut self.buf) {
            n += 1;
            assert!(n <= MAX_PACKETS_PER_FLUSH, "poll_packet does not run dry");
            self.peer
                .learn(self.buf.as_slice())
                .expect("the session's packets are under its key");
        }
        assert!(self.buf.is_empty(), "poll_packet returned false with bytes");
    }

    fn events(&mut self) {
        while let Some(ev) = self.session.poll_event() {
            match ev {
                SessionEvent::Result { req, .. } | SessionEvent::Failed { req, .. } => {
                    assert!(
                        req < self.pushed,
                        "an answer for request {req}, never pushed"
                    );
                    assert!(!self.cancelled.contains(&req), "an answer after cancel");
                    assert!(self.finished.insert(req), "request {req} answered twice");
                }
                SessionEvent::Acked { req } => {
                    assert!(req < self.pushed, "an ack for request {req}, never pushed");
                    assert!(!self.cancelled.contains(&req), "an ack after cancel");
                    assert!(!self.finished.contains(&req), "an ack after the answer");
                }
                _ => {}
            }
        }
        let open = self.pushed as usize - self.finished.len() - self.cancelled.len();
        assert_eq!(self.session.in_flight(), open, "requests lost or invented");
    }

    fn receive(&mut self, mut packet: Vec<u8>, hold: bool) {
        if self.sent.len() == 16 {
            self.sent.remove(0);
        }
        self.sent.push(packet.clone());
        if hold {
            self.held.push(packet);
        } else {
            self.deliver_held();
            let _ = self.session.handle_packet(self.now, &mut packet);
        }
    }

    /// The held packets, together: decrypting them at once gives each the
    /// verdict it gets alone, and the session refuses exactly those.
    fn deliver_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let key = self.session.auth_key().clone();
        let alone: Vec<Result<Vec<u8>, DecryptError>> = self
            .held
            .iter()
            .map(|p| {
                decrypt_message_in_place(&key, Side::Server, &mut p.clone()).map(<[u8]>::to_vec)
            })
            .collect();
        let mut copies = self.held.clone();
        let mut slices: Vec<&mut [u8]> = copies.iter_mut().map(Vec::as_mut_slice).collect();
        let mut seen = 0;
        decrypt_messages_in_place(&key, Side::Server, &mut slices, |i, r| {
            assert_eq!(i, seen, "results in order");
            assert_eq!(
                r.map(<[u8]>::to_vec),
                alone[i],
                "packet {i} decrypted together"
            );
            seen += 1;
        });
        assert_eq!(seen, alone.len(), "a result for every packet");
        let mut held = std::mem::take(&mut self.held);
        let mut slices: Vec<&mut [u8]> = held.iter_mut().map(Vec::as_mut_slice).collect();
        let mut seen = 0;
        self.session.handle_packets(self.now, &mut slices, |i, r| {
            assert_eq!(i, seen, "results in order");
            if let Err(e) = &alone[i] {
                assert_eq!(r, Err(InboundError::Decrypt(*e)));
            }
            seen += 1;
        });
        assert_eq!(seen, alone.len(), "a result for every packet");
    }

    /// A request from the input, made a plausible query (see
    /// [`super::query`]).
    fn push(&mut self, body: &[u8]) {
        self.session.push_request(self.pushed, super::query(body));
        self.pushed += 1;
    }
}

/// Layout: `flags` (bit 0: session not time-synced; bits 1-2: replay
/// window 1024/4/64/1; bits 3-5: requests pushed at the start), then
/// steps, each an op byte (bits 0-2 the step, bit 3 its option, bit 4: the
/// step's packet is held back, held packets reach the session together
/// before the next step without it; bit 5: the flush after it uses
/// `poll_packets`; bit 7: no flush after it) and its arguments:
///
/// - 0: raw packet (u16-prefixed bytes), to `decrypt_message_in_place`
///   and to the session;
/// - 1: sealed plaintext (u16-prefixed; option: write the session_id);
/// - 2: sealed well-formed message: msg_id low half (u32), seqno (u32),
///   padding blocks (u8), body (u16-prefixed);
/// - 3: time passes (u16 × 10 ms), then `handle_timeout`;
/// - 4: a request (u16-prefixed body);
/// - 5: connection lost (option) or connected;
/// - 6: cancel request `u8`, or (option) a ping with id `u64`;
/// - 7: one of the last 16 packets received, again (u8 picks).
///
/// Sealed bytes may carry the placeholders of [`super::peer`].
pub fn encrypted(data: &[u8]) {
    let mut c = Cursor::new(data);
    let flags = c.u8();
    let key = fixed_key(flags >> 6);
    let config = SessionConfig {
        time_synced: flags & 1 == 0,
        replay_window: [1024, 4, 64, 1][usize::from(flags >> 1 & 3)],
        inflate_cap: 1 << 20,
        ..SessionConfig::default()
    };
    let session = Session::new(
        config,
        key.clone(),
        0x5a17,
        Clock::new(t0(), UNIX),
        0,
        [flags; 32],
    );
    let mut run = Run {
        peer: Peer::new(key.clone()),
        session,
        now: t0(),
        pushed: 0,
        finished: BTreeSet::new(),
        cancelled: BTreeSet::new(),
        buf: FrameBuf::new(),
        bufs: (0..PARALLEL_MESSAGES).map(|_| FrameBuf::new()).collect(),
        sent: Vec::new(),
        held: Vec::new(),
    };
    run.peer.session_id = Some(run.session.session_id());
    for i in 0..(flags >> 3 & 7) {
        run.push(&[i, 0x0f, 0xfe, 0xc0, i, i, i, i]);
    }
    run.flush(false);

    while !c.is_empty() {
        let op = c.u8();
        let option = op & 8 != 0;
        let hold = op & 0x10 != 0;
        if !hold {
            run.deliver_held();
        }
        match op & 7 {
            0 => {
                let raw = c.chunk().to_vec();
                let _ = decrypt_message_in_place(&key, Side::Server, &mut raw.clone());
                run.receive(raw, hold);
            }
            1 => {
                let plain = c.chunk();
                let packet = run.peer.seal_plain(plain, option, run.server_secs());
                let mut copy = packet.clone();
                let expected = expected_verdict(&{
                    // The plaintext as sealed (padded, placeholders replaced).
                    let mut p = packet.clone();
                    decrypt_for_test(&key, &mut p)
                });
                match (
                    decrypt_message_in_place(&key, Side::Server, &mut copy),
                    expected,
                ) {
                    (Ok(p), Ok(n)) => assert_eq!(p.len(), n),
                    (Err(e), Err(x)) => assert_eq!(e, x),
                    (got, want) => panic!("sealed message: got {got:?}, want {want:?}"),
                }
                run.receive(packet, hold);
            }
            2 => {
                let low = c.u32();
                let seqno = c.u32() as i32;
                let extra = c.u8();
                let body = c.chunk();
                let packet = run
                    .peer
                    .seal_body(body, low, seqno, extra, run.server_secs());
                let mut copy = packet.clone();
                let plain = decrypt_message_in_place(&key, Side::Server, &mut copy)
                    .expect("a well-formed message decrypts");
                assert_eq!(plain.len(), 32 + body.len() / 4 * 4);
                run.receive(packet, hold);
            }
            3 => {
                run.now += Duration::from_millis(u64::from(c.u16()) * 10);
                run.session.handle_timeout(run.now);
            }
            4 => {
                let body = c.chunk();
                run.push(body);
            }
            5 => {
                if option {
                    run.session.on_connection_lost();
                } else {
                    run.session.on_connected();
                }
            }
            6 => {
                if option {
                    run.session.ping(c.u64() as i64, None);
                } else if run.pushed > 0 {
                    let req = u64::from(c.u8()) % run.pushed;
                    if !run.finished.contains(&req) && run.cancelled.insert(req) {
                        run.session.cancel(req);
                    }
                }
            }
            _ => {
                if !run.sent.is_empty() {
                    let i = usize::from(c.u8()) % run.sent.len();
                    let again = run.sent[i].clone();
                    run.receive(again, hold);
                }
            }
        }
        run.events();
        if op & 0x80 == 0 {
            run.flush(op & 0x20 != 0);
        }
    }
    run.deliver_held();
    run.events();
    run.flush(false);
    run.events();
}

/// The plaintext inside a packet sealed here (whatever its fields say).
fn decrypt_for_test(key: &mtsender::crypto::AuthKey, packet: &mut [u8]) -> Vec<u8> {
    use mtsender::crypto::{derive_aes, ige_decrypt};
    let mut msg_key = [0u8; 16];
    msg_key.copy_from_slice(&packet[8..24]);
    let (k, iv) = derive_aes(key, Side::Server, &msg_key);
    ige_decrypt(&mut packet[24..], &k, &iv).expect("whole blocks");
    packet[24..].to_vec()
}
