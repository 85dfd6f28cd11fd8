//! The `fake-dc` binary: its command-line contract, and the core's client
//! over real loopback TCP (handshake, encrypted echo, a scripted fault).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mtsender::buf::FrameBuf;
use mtsender::crypto::{self, AuthKey, RsaPublicKey, Side};
use mtsender::handshake::{Finished, Handshake, HandshakeConfig, HandshakeError};
use mtsender::session::ids::{Clock, MsgIdGen};
use mtsender::tl::message::{Container, RpcResult, MSG_CONTAINER_ID};
use mtsender::tl::{types as t, Deserialize, Reader};
use mtsender::transport::{ClientCodec, Frame, TransportKind};
use mtsender_testkit::client::{echo_body, Transport};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

const BIN: &str = env!("CARGO_BIN_EXE_fake-dc");

struct Server {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("fake-dc starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_string();
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );
    Server {
        child,
        _stdout: stdout,
        addr,
    }
}

// The test is the adapter here: it reads the real clock, as the binary does.
#[allow(clippy::disallowed_methods)]
fn clock() -> (Instant, Clock) {
    let now = Instant::now();
    let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (now, Clock::new(now, unix))
}

fn public_key() -> RsaPublicKey {
    mtsender_testkit::test_rsa_key().public_key().clone()
}

struct TcpClient {
    stream: TcpStream,
    codec: ClientCodec,
    rng: ChaCha20Rng,
}

impl TcpClient {
    fn connect(addr: &str, transport: Transport, seed: u64) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let codec = transport.codec(2, &mut rng);
        Self { stream, codec, rng }
    }

    fn send(&mut self, packet: &[u8]) {
        let mut buf = FrameBuf::from_payload(packet);
        self.codec.encode(&mut buf, &mut self.rng);
        self.stream.write_all(buf.as_slice()).unwrap();
    }

    /// The next packet (padded transports' padding left on).
    fn recv(&mut self) -> Vec<u8> {
        loop {
            if let Some(frame) = self.codec.next_frame() {
                match frame.expect("server frames decode") {
                    Frame::Packet(p) => return p.to_vec(),
                    other => panic!("unexpected {other:?}"),
                }
            }
            let mut buf = [0u8; 4096];
            let n = match self.stream.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => r.expect("server answers in time"),
            };
            assert!(n > 0, "server closed the connection");
            self.codec.feed(&buf[..n]);
        }
    }

    fn handshake(
        &mut self,
        clock: Clock,
        now: Instant,
        dc: i32,
    ) -> Result<Finished, HandshakeError> {
        let mut hs = Handshake::new(
            HandshakeConfig::new(vec![public_key()], dc),
            clock,
            now,
            [3; 32],
        );
        loop {
            while let Some(msg) = hs.poll_transmit() {
                self.send(&msg);
            }
            let mut p = self.recv();
            if self.codec.kind() == TransportKind::PaddedIntermediate {
                mtsender_testkit::trim_plain_padding(&mut p);
            }
            if let Some(done) = hs.handle_packet(now, &p)? {
                return Ok(done);
            }
        }
    }

    /// Sends test.echo and returns the rpc_result's result bytes.
    fn echo(
        &mut self,
        key: &AuthKey,
        salt: i64,
        ids: &mut MsgIdGen,
        now: Instant,
        payload: &[u8],
    ) -> Vec<u8> {
        let session_id = self.rng.next_u64() as i64;
        let msg_id = ids.next(now);
        let body = echo_body(payload);
        let mut buf = FrameBuf::new();
        buf.append_with(|v| {
            v.extend_from_slice(&salt.to_le_bytes());
            v.extend_from_slice(&session_id.to_le_bytes());
            v.extend_from_slice(&msg_id.to_le_bytes());
            v.extend_from_slice(&1i32.to_le_bytes());
            v.extend_from_slice(&(body.len() as i32).to_le_bytes());
            v.extend_from_slice(&body);
        });
        crypto::encrypt_message_in_place(key, Side::Client, &mut buf, &mut self.rng);
        self.send(&buf.into_vec());
        loop {
            let mut packet = self.recv();
            let slice = if self.codec.kind() == TransportKind::PaddedIntermediate {
                crypto::strip_transport_padding(&mut packet)
            } else {
                &mut packet[..]
            };
            let plain = crypto::decrypt_message_in_place(key, Side::Server, slice).unwrap();
            let body = &plain[32..];
            let mut bodies = vec![body];
            if Reader::new(body).read_u32().ok() == Some(MSG_CONTAINER_ID) {
                bodies = Container::parse(body)
                    .unwrap()
                    .iter()
                    .map(|m| m.body)
                    .collect();
            }
            for b in bodies {
                if let Ok(r) = RpcResult::parse(b) {
                    assert_eq!(r.req_msg_id, msg_id);
                    return r.result.to_vec();
                }
            }
        }
    }
}

#[test]
fn prints_the_public_key_and_its_fingerprint() {
    let out = Command::new(BIN)
        .arg("--print-public-key")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let (pem, fp_line) = text.split_at(text.find("fingerprint: ").unwrap());
    assert_eq!(
        pem,
        include_str!("../../tests/vectors/test_rsa_2048.pub.pem")
    );
    let fp = public_key().fingerprint();
    assert_eq!(
        fp_line,
        format!("fingerprint: {fp} (0x{:016x})\n", fp as u64)
    );
}

#[test]
fn refuses_non_loopback_addresses_and_bad_arguments() {
    for args in [
        &["--listen", "0.0.0.0:0"][..],
        &["--listen", "192.0.2.1:0"],
        &["--listen", "127.0.0.1:0", "--faults", "flood_wait"],
        &["--listen", "127.0.0.1:0", "--dc", "two"],
        &["--bogus"],
        &[],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    let out = Command::new(BIN)
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

#[test]
fn handshake_and_echo_over_tcp() {
    let server = start(&[]);
    for (i, transport) in [
        Transport::Plain(TransportKind::Full),
        Transport::Plain(TransportKind::PaddedIntermediate),
        Transport::Obfuscated(TransportKind::Abridged),
        Transport::Obfuscated(TransportKind::Intermediate),
    ]
    .into_iter()
    .enumerate()
    {
        let (now, clock) = clock();
        let mut c = TcpClient::connect(&server.addr, transport, i as u64);
        let done = c.handshake(clock, now, 2).unwrap();
        let mut ids = MsgIdGen::new(clock, done.time_offset);
        let result = c.echo(&done.auth_key, done.first_salt, &mut ids, now, b"tcp");
        assert_eq!(result, echo_body(b"tcp"), "{transport:?}");
    }
}

#[test]
fn dc_and_faults_flags() {
    let server = start(&["--dc", "4", "--faults", "flood_wait=3@1"]);
    let (now, clock) = clock();
    let mut c = TcpClient::connect(
        &server.addr,
        Transport::Plain(TransportKind::Intermediate),
        9,
    );
    assert_eq!(
        c.handshake(clock, now, 2).unwrap_err(),
        HandshakeError::ServerDhParamsFail
    );
    let mut c = TcpClient::connect(
        &server.addr,
        Transport::Plain(TransportKind::Intermediate),
        10,
    );
    let done = c.handshake(clock, now, 4).unwrap();
    let mut ids = MsgIdGen::new(clock, done.time_offset);
    let first = c.echo(&done.auth_key, done.first_salt, &mut ids, now, b"f");
    let err = t::RpcError::from_bytes(&first).unwrap();
    assert_eq!(
        (err.error_code, err.error_message.as_str()),
        (420, "FLOOD_WAIT_3")
    );
    let second = c.echo(&done.auth_key, done.first_salt, &mut ids, now, b"f");
    assert_eq!(second, echo_body(b"f"));
}
