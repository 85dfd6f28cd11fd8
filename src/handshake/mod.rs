//! Auth key creation, client side, as a sans-IO state machine.
//!
//! ```text
//! req_pq_multi ──► resPQ ──► req_DH_params ──► server_DH_params_ok
//!        ──► set_client_DH_params ──► dh_gen_ok | dh_gen_retry (again) | dh_gen_fail
//! ```
//!
//! Feed it the server's packets with [`Handshake::handle_packet`], send what
//! [`Handshake::poll_transmit`] gives (plain messages, ready for a transport
//! codec), and wake it at [`Handshake::poll_timeout`]. It ends with
//! [`Finished`]: the auth key, the first server salt and the server's clock
//! offset, or with a [`HandshakeError`] naming the check that failed.
//!
//! Every check of the spec is made: nonces echoed, the RSA key chosen from
//! the configured ones by fingerprint, the SHA1 of the encrypted answer,
//! `dh_prime` either Telegram's known prime or proven a safe prime with the
//! residue condition on `g`, `g`, `g_a` and `g_b` in range with the 2^1984
//! margins, and new_nonce_hash 1, 2 and 3. Randomness comes from a ChaCha20
//! generator seeded by the caller, in a fixed order (see
//! [`Handshake::with_rng`]), so a run replays exactly.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};

use crate::crypto::{self, AuthKey, DhError, RsaPublicKey};
use crate::session::ids::{Clock, MsgIdGen};
use crate::tl::message::PlainMessage;
use crate::tl::{enums, functions, types, Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// What kind of key to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A permanent key (`p_q_inner_data_dc`).
    Permanent,
    /// A temporary key (`p_q_inner_data_temp_dc`) living `expires_in`
    /// seconds, to be bound to a permanent key for perfect forward secrecy.
    Temporary {
        /// Lifetime in seconds.
        expires_in: i32,
    },
}

/// Settings of one handshake.
#[derive(Clone, Debug)]
pub struct HandshakeConfig {
    /// The server RSA keys we trust; the first whose fingerprint the server
    /// offers is used.
    pub rsa_keys: Vec<RsaPublicKey>,
    /// The DC id written in the inner data: +10000 for test servers,
    /// negative for media DCs.
    pub dc_id: i32,
    /// Permanent or temporary key.
    pub kind: KeyKind,
    /// How long to wait for each server reply.
    pub step_timeout: Duration,
    /// How many `dh_gen_retry` answers to accept before giving up.
    pub max_retries: u32,
}

impl HandshakeConfig {
    /// A permanent key for `dc_id` with the given trusted keys, a 10 s step
    /// timeout and up to 5 retries.
    pub fn new(rsa_keys: Vec<RsaPublicKey>, dc_id: i32) -> Self {
        Self {
            rsa_keys,
            dc_id,
            kind: KeyKind::Permanent,
            step_timeout: Duration::from_secs(10),
            max_retries: 5,
        }
    }
}

/// The outcome of a successful handshake.
#[derive(Clone, Debug)]
pub struct Finished {
    /// The new key.
    pub auth_key: AuthKey,
    /// The first server salt: `new_nonce[0..8] ^ server_nonce[0..8]`.
    pub first_salt: i64,
    /// Server time minus local time, seconds (from `server_DH_inner_data`).
    pub time_offset: i64,
    /// For a temporary key, the server unix time at which it expires.
    pub expires_at: Option<i64>,
}

/// Why a handshake failed. Each variant is one check of the spec.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A server packet that is not a well-formed plain message or TL object.
    #[error("malformed server message: {0}")]
    Malformed(#[from] crate::tl::Error),
    /// A plain server message with an even msg_id.
    #[error("server msg_id is even")]
    EvenMsgId,
    /// The server answered with something this step does not expect.
    #[error("unexpected constructor {0:#010x} at this step")]
    Unexpected(u32),
    /// The server did not echo our nonce.
    #[error("nonce mismatch")]
    NonceMismatch,
    /// The server changed its server_nonce.
    #[error("server_nonce mismatch")]
    ServerNonceMismatch,
    /// None of the configured RSA keys is among those the server offers.
    #[error("no configured RSA key matches the server's fingerprints {offered:x?}")]
    NoMatchingKey {
        /// The fingerprints the server offered.
        offered: Vec<i64>,
    },
    /// pq is not a product of two primes that fits in 64 bits.
    #[error("cannot factor pq")]
    BadPq,
    /// RSA encryption failed.
    #[error("RSA: {0}")]
    Rsa(crypto::Error),
    /// The server refused our DH parameters request.
    #[error("server_DH_params_fail")]
    ServerDhParamsFail,
    /// The encrypted answer or its DH parameters failed a check.
    #[error("DH: {0}")]
    Dh(#[from] DhError),
    /// A new_nonce_hash (1, 2 or 3) does not match.
    #[error("new_nonce_hash{0} mismatch")]
    NewNonceHashMismatch(u8),
    /// The server answered `dh_gen_fail`.
    #[error("dh_gen_fail")]
    DhGenFail,
    /// More `dh_gen_retry` answers than allowed.
    #[error("too many dh_gen_retry answers")]
    TooManyRetries,
    /// No reply within the step timeout.
    #[error("handshake step timed out")]
    Timeout,
}

enum State {
    AwaitResPq,
    AwaitDhParams {
        server_nonce: [u8; 16],
        new_nonce: [u8; 32],
    },
    AwaitDhGen(Box<DhGen>),
    Done,
    Failed(HandshakeError),
}

struct DhGen {
    server_nonce: [u8; 16],
    new_nonce: [u8; 32],
    dh: DhParams,
    auth_key: AuthKey,
    retries: u32,
    time_offset: i64,
}

#[derive(Clone)]
struct DhParams {
    g: u32,
    dh_prime: [u8; 256],
    g_a: Vec<u8>,
    server_time: i64,
    tmp_key: [u8; 32],
    tmp_iv: [u8; 32],
}

/// Auth key creation, client side. See the [module docs](self).
pub struct Handshake<R = ChaCha20Rng> {
    config: HandshakeConfig,
    rng: R,
    clock: Clock,
    msg_ids: MsgIdGen,
    nonce: [u8; 16],
    state: State,
    outbox: VecDeque<Vec<u8>>,
    deadline: Instant,
    finished: Option<Finished>,
}

impl Handshake<ChaCha20Rng> {
    /// Starts a handshake at `now`; `clock` maps instants to unix time and
    /// `seed` seeds its randomness. The first message (`req_pq_multi`) is
    /// ready in [`poll_transmit`](Self::poll_transmit).
    pub fn new(config: HandshakeConfig, clock: Clock, now: Instant, seed: [u8; 32]) -> Self {
        Self::with_rng(config, clock, now, ChaCha20Rng::from_seed(seed))
    }
}

impl<R: RngCore + CryptoRng> Handshake<R> {
    /// Like [`new`](Handshake::new) with any cryptographic generator.
    ///
    /// Randomness is drawn in this order, which the known-answer test relies
    /// on: nonce (16 bytes, here); new_nonce (32) and the RSA_PAD randomness
    /// (224) on resPQ; b (256) and the client_DH_inner_data padding (0..=15)
    /// on server_DH_params_ok and on every dh_gen_retry.
    pub fn with_rng(config: HandshakeConfig, clock: Clock, now: Instant, mut rng: R) -> Self {
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let mut hs = Self {
            msg_ids: MsgIdGen::new(clock, 0),
            config,
            rng,
            clock,
            nonce,
            state: State::AwaitResPq,
            outbox: VecDeque::new(),
            deadline: now,
            finished: None,
        };
        hs.send(now, &functions::ReqPqMulti { nonce });
        hs
    }

    fn send(&mut self, now: Instant, body: &impl Serialize) {
        let mut out = Vec::new();
        PlainMessage::write(&mut out, self.msg_ids.next(now), &body.to_bytes());
        self.outbox.push_back(out);
        self.deadline = now + self.config.step_timeout;
    }

    /// The next plain message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout): the current
    /// step's deadline, or `None` once finished or failed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Done | State::Failed(_) => None,
            _ => Some(self.deadline),
        }
    }

    /// Fails the handshake with [`HandshakeError::Timeout`] if the deadline
    /// has passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), HandshakeError> {
        if self.poll_timeout().is_some_and(|d| now >= d) {
            return Err(self.fail(HandshakeError::Timeout));
        }
        Ok(())
    }

    /// Whether the handshake ended (successfully or not).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done | State::Failed(_))
    }

    /// The error the handshake failed with, if it did.
    pub fn error(&self) -> Option<&HandshakeError> {
        match &self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Takes the result once the handshake succeeded.
    pub fn take_finished(&mut self) -> Option<Finished> {
        self.finished.take()
    }

    fn fail(&mut self, e: HandshakeError) -> HandshakeError {
        self.outbox.clear();
        self.state = State::Failed(e.clone());
        e
    }

    /// Handles one packet from the server (a whole transport frame).
    ///
    /// Returns `Ok(Some(_))` when the key is ready, `Ok(None)` while the
    /// handshake goes on, and an error when a check failed: the handshake is
    /// then over (start a new one, on a new connection).
    pub fn handle_packet(
        &mut self,
        now: Instant,
        packet: &[u8],
    ) -> Result<Option<Finished>, HandshakeError> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        match self.step(now, packet) {
            Ok(()) => Ok(self.finished.take()),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn step(&mut self, now: Instant, packet: &[u8]) -> Result<(), HandshakeError> {
        let msg = PlainMessage::parse(packet)?;
        if msg.msg_id & 1 == 0 {
            return Err(HandshakeError::EvenMsgId);
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::AwaitResPq => self.on_res_pq(now, msg.body),
            State::AwaitDhParams {
                server_nonce,
                new_nonce,
            } => self.on_server_dh_params(now, msg.body, server_nonce, new_nonce),
            State::AwaitDhGen(gen) => self.on_dh_gen(now, msg.body, gen),
            State::Done => Err(HandshakeError::Unexpected(
                crate::tl::Reader::new(msg.body).read_u32().unwrap_or(0),
            )),
            State::Failed(e) => Err(e),
        }
    }

    fn on_res_pq(&mut self, now: Instant, body: &[u8]) -> Result<(), HandshakeError> {
        let res = expect::<types::ResPq>(body)?;
        if res.nonce != self.nonce {
            return Err(HandshakeError::NonceMismatch);
        }
        let key = self
            .config
            .rsa_keys
            .iter()
            .find(|k| {
                res.server_public_key_fingerprints
                    .contains(&k.fingerprint())
            })
            .cloned()
            .ok_or_else(|| HandshakeError::NoMatchingKey {
                offered: res.server_public_key_fingerprints.clone(),
            })?;
        if res.pq.len() > 8 {
            return Err(HandshakeError::BadPq);
        }
        let pq = res.pq.iter().fold(0u64, |acc, &b| acc << 8 | b as u64);
        let (p, q) = crypto::factorize(pq).ok_or(HandshakeError::BadPq)?;
        let (p, q) = (be_min(p), be_min(q));

        let mut new_nonce = [0u8; 32];
        self.rng.fill_bytes(&mut new_nonce);
        let inner: enums::PQInnerData = match self.config.kind {
            KeyKind::Permanent => types::PQInnerDataDc {
                pq: res.pq.clone(),
                p: p.clone(),
                q: q.clone(),
                nonce: self.nonce,
                server_nonce: res.server_nonce,
                new_nonce,
                dc: self.config.dc_id,
            }
            .into(),
            KeyKind::Temporary { expires_in } => types::PQInnerDataTempDc {
                pq: res.pq.clone(),
                p: p.clone(),
                q: q.clone(),
                nonce: self.nonce,
                server_nonce: res.server_nonce,
                new_nonce,
                dc: self.config.dc_id,
                expires_in,
            }
            .into(),
        };
        let encrypted = crypto::rsa_pad_encrypt(&key, &inner.to_bytes(), &mut self.rng)
            .map_err(HandshakeError::Rsa)?;
        self.send(
            now,
            &functions::ReqDhParams {
                nonce: self.nonce,
                server_nonce: res.server_nonce,
                p,
                q,
                public_key_fingerprint: key.fingerprint(),
                encrypted_data: encrypted.to_vec(),
            },
        );
        self.state = State::AwaitDhParams {
            server_nonce: res.server_nonce,
            new_nonce,
        };
        Ok(())
    }

    fn check_nonces(
        &self,
        nonce: &[u8; 16],
        server_nonce: &[u8; 16],
        expected_server: &[u8; 16],
    ) -> Result<(), HandshakeError> {
        if *nonce != self.nonce {
            return Err(HandshakeError::NonceMismatch);
        }
        if server_nonce != expected_server {
            return Err(HandshakeError::ServerNonceMismatch);
        }
        Ok(())
    }

    fn on_server_dh_params(
        &mut self,
        now: Instant,
        body: &[u8],
        server_nonce: [u8; 16],
        new_nonce: [u8; 32],
    ) -> Result<(), HandshakeError> {
        let ok = match expect::<enums::ServerDhParams>(body)? {
            enums::ServerDhParams::Ok(ok) => ok,
            enums::ServerDhParams::Fail(fail) => {
                self.check_nonces(&fail.nonce, &fail.server_nonce, &server_nonce)?;
                return Err(HandshakeError::ServerDhParamsFail);
            }
        };
        self.check_nonces(&ok.nonce, &ok.server_nonce, &server_nonce)?;
        let (tmp_key, tmp_iv) = crypto::tmp_aes_key_iv(&new_nonce, &server_nonce);
        let decrypted = crypto::decrypt_dh_answer(&ok.encrypted_answer, &tmp_key, &tmp_iv)?;
        let mut r = crate::tl::Reader::new(decrypted.get(20..).unwrap_or_default());
        let inner = types::ServerDhInnerData::deserialize(&mut r)?;
        crypto::check_dh_answer_hash(&decrypted, r.pos())?;
        self.check_nonces(&inner.nonce, &inner.server_nonce, &server_nonce)?;

        let g = u32::try_from(inner.g).map_err(|_| DhError::UnsupportedG)?;
        crypto::check_dh_params(&inner.dh_prime, g)?;
        // check_dh_params accepted exactly 256 bytes.
        let dh_prime: [u8; 256] = inner
            .dh_prime
            .as_slice()
            .try_into()
            .map_err(|_| DhError::BadPrimeSize)?;
        // check_dh_params admits only g in 2..=7, so 1 < g < p - 1 holds; the
        // 2^1984 margins are for g_a and g_b.
        crypto::check_g_range(&inner.g_a, &dh_prime)?;

        let server_time = inner.server_time as i64;
        let time_offset = server_time - self.clock.unix_secs_at(now);
        self.msg_ids.set_offset_secs(time_offset);
        let dh = DhParams {
            g,
            dh_prime,
            g_a: inner.g_a,
            server_time,
            tmp_key,
            tmp_iv,
        };
        let auth_key = self.send_client_dh(now, &server_nonce, &dh, 0)?;
        self.state = State::AwaitDhGen(Box::new(DhGen {
            server_nonce,
            new_nonce,
            dh,
            auth_key,
            retries: 0,
            time_offset,
        }));
        Ok(())
    }

    /// Draws b, sends client_DH_inner_data, and returns the key it implies.
    fn send_client_dh(
        &mut self,
        now: Instant,
        server_nonce: &[u8; 16],
        dh: &DhParams,
        retry_id: i64,
    ) -> Result<AuthKey, HandshakeError> {
        let mut b = [0u8; 256];
        self.rng.fill_bytes(&mut b);
        let g_b = crypto::modpow(&dh.g.to_be_bytes(), &b, &dh.dh_prime);
        crypto::check_g_range(&g_b, &dh.dh_prime)?;
        let auth_key = AuthKey::from_bytes(crypto::modpow(&dh.g_a, &b, &dh.dh_prime));
        let inner = types::ClientDhInnerData {
            nonce: self.nonce,
            server_nonce: *server_nonce,
            retry_id,
            g_b: g_b.to_vec(),
        };
        let encrypted =
            crypto::encrypt_dh_answer(&inner.to_bytes(), &dh.tmp_key, &dh.tmp_iv, &mut self.rng);
        self.send(
            now,
            &functions::SetClientDhParams {
                nonce: self.nonce,
                server_nonce: *server_nonce,
                encrypted_data: encrypted,
            },
        );
        Ok(auth_key)
    }

    fn on_dh_gen(
        &mut self,
        now: Instant,
        body: &[u8],
        mut gen: Box<DhGen>,
    ) -> Result<(), HandshakeError> {
        let answer = expect::<enums::SetClientDhParamsAnswer>(body)?;
        let (server_nonce, new_nonce) = (gen.server_nonce, gen.new_nonce);
        let aux = gen.auth_key.aux_hash();
        let hash = |n| crypto::new_nonce_hash(&new_nonce, aux, n);
        match answer {
            enums::SetClientDhParamsAnswer::Ok(ok) => {
                self.check_nonces(&ok.nonce, &ok.server_nonce, &server_nonce)?;
                if ok.new_nonce_hash1 != hash(1) {
                    return Err(HandshakeError::NewNonceHashMismatch(1));
                }
                self.state = State::Done;
                self.finished = Some(Finished {
                    first_salt: crypto::first_salt(&new_nonce, &server_nonce),
                    time_offset: gen.time_offset,
                    expires_at: match self.config.kind {
                        KeyKind::Temporary { expires_in } => {
                            Some(gen.dh.server_time + expires_in as i64)
                        }
                        KeyKind::Permanent => None,
                    },
                    auth_key: gen.auth_key,
                });
                Ok(())
            }
            enums::SetClientDhParamsAnswer::Retry(retry) => {
                self.check_nonces(&retry.nonce, &retry.server_nonce, &server_nonce)?;
                if retry.new_nonce_hash2 != hash(2) {
                    return Err(HandshakeError::NewNonceHashMismatch(2));
                }
                if gen.retries >= self.config.max_retries {
                    return Err(HandshakeError::TooManyRetries);
                }
                gen.auth_key = self.send_client_dh(now, &server_nonce, &gen.dh, aux)?;
                gen.retries += 1;
                self.state = State::AwaitDhGen(gen);
                Ok(())
            }
            enums::SetClientDhParamsAnswer::Fail(fail) => {
                self.check_nonces(&fail.nonce, &fail.server_nonce, &server_nonce)?;
                if fail.new_nonce_hash3 != hash(3) {
                    return Err(HandshakeError::NewNonceHashMismatch(3));
                }
                Err(HandshakeError::DhGenFail)
            }
        }
    }
}

/// Parses `body` as `T`, reporting another constructor as unexpected.
fn expect<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, HandshakeError> {
    T::from_bytes(body).map_err(|e| match e {
        crate::tl::Error::UnexpectedConstructor { got, at: 0 } => HandshakeError::Unexpected(got),
        e => HandshakeError::Malformed(e),
    })
}

/// Big-endian bytes of `x` without leading zeros.
fn be_min(x: u64) -> Vec<u8> {
    let bytes = x.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    bytes[skip..].to_vec()
}

impl<R> std::fmt::Debug for Handshake<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::AwaitResPq => "AwaitResPq",
            State::AwaitDhParams { .. } => "AwaitDhParams",
            State::AwaitDhGen(_) => "AwaitDhGen",
            State::Done => "Done",
            State::Failed(_) => "Failed",
        };
        f.debug_struct("Handshake")
            .field("state", &state)
            .field("dc_id", &self.config.dc_id)
            .finish_non_exhaustive()
    }
}
