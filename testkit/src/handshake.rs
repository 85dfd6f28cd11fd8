//! The server side of auth key creation.
//!
//! ```text
//! req_pq / req_pq_multi ──► resPQ
//! req_DH_params (RSA_PAD, or the legacy format) ──► server_DH_params_ok | _fail
//! set_client_DH_params ──► dh_gen_ok | dh_gen_retry | dh_gen_fail
//! ```
//!
//! One handshake runs per connection at a time; a new `req_pq` restarts it.
//! Requests that do not fit the handshake's state (wrong nonces, a key the
//! server does not have, undecryptable data) are dropped without an answer,
//! as they cannot be told apart from noise.

use std::time::Instant;

use mtsender::crypto::{self, AuthKey, TELEGRAM_DH_PRIME};
use mtsender::tl::message::PlainMessage;
use mtsender::tl::{
    enums, functions as f, types as t, Deserialize, Identifiable, Reader, Serialize,
};
use rand_core::RngCore;
use sha1::{Digest, Sha1};

use crate::dc::{first_id, ConnId, FakeDc, KeyState};
use crate::faults::BadGa;
use crate::salts::Salts;

/// Per-connection handshake progress.
pub(crate) enum PendingHandshake {
    /// resPQ sent.
    ResPq {
        nonce: [u8; 16],
        server_nonce: [u8; 16],
        p: u32,
        q: u32,
    },
    /// server_DH_params_ok sent.
    Dh(Box<DhState>),
}

pub(crate) struct DhState {
    nonce: [u8; 16],
    server_nonce: [u8; 16],
    new_nonce: [u8; 32],
    a: [u8; 256],
    prime: [u8; 256],
    tmp_key: [u8; 32],
    tmp_iv: [u8; 32],
    expires_in: Option<i32>,
    retries_left: u32,
    expected_retry_id: i64,
}

fn is_prime(n: u32) -> bool {
    if n < 2 || n.is_multiple_of(2) {
        return n == 2;
    }
    let n = u64::from(n);
    (3..)
        .step_by(2)
        .take_while(|d| d * d <= n)
        .all(|d| n % d != 0)
}

/// A random prime in [2^30, 2^31).
fn random_prime(rng: &mut impl RngCore) -> u32 {
    loop {
        let c = (rng.next_u32() | 0x4000_0001) & 0x7fff_ffff;
        if is_prime(c) {
            return c;
        }
    }
}

/// Big-endian bytes without leading zeros (as TL carries p, q and pq).
fn be_min(x: u64) -> Vec<u8> {
    let bytes = x.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    bytes[skip..].to_vec()
}

fn be_to_u64(bytes: &[u8]) -> Option<u64> {
    if bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
}

/// `SHA1(new_nonce)[4..20]`, the hash in server_DH_params_fail.
fn new_nonce_sha1_low(new_nonce: &[u8; 32]) -> [u8; 16] {
    let d = Sha1::digest(new_nonce);
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[4..]);
    out
}

/// Telegram's prime plus 6: 2048 bits, ≡ 2 mod 3 like the original, and not
/// a safe prime.
fn composite_prime() -> [u8; 256] {
    let mut p = TELEGRAM_DH_PRIME;
    let mut carry = 6u16;
    for b in p.iter_mut().rev() {
        let v = u16::from(*b) + carry;
        *b = v as u8;
        carry = v >> 8;
        if carry == 0 {
            break;
        }
    }
    p
}

impl FakeDc {
    /// A plain message from the client: a handshake step.
    pub(crate) fn handle_plain(&mut self, now: Instant, conn: ConnId, packet: &[u8]) {
        let Ok(msg) = PlainMessage::parse(packet) else {
            return;
        };
        let body = msg.body;
        let reply = match first_id(body) {
            Some(f::ReqPqMulti::CONSTRUCTOR_ID) => f::ReqPqMulti::from_bytes(body)
                .ok()
                .map(|r| self.on_req_pq(conn, r.nonce)),
            Some(f::ReqPq::CONSTRUCTOR_ID) => f::ReqPq::from_bytes(body)
                .ok()
                .map(|r| self.on_req_pq(conn, r.nonce)),
            Some(f::ReqDhParams::CONSTRUCTOR_ID) => f::ReqDhParams::from_bytes(body)
                .ok()
                .and_then(|r| self.on_req_dh_params(now, conn, r)),
            Some(f::SetClientDhParams::CONSTRUCTOR_ID) => f::SetClientDhParams::from_bytes(body)
                .ok()
                .and_then(|r| self.on_set_client_dh_params(now, conn, r)),
            _ => None,
        };
        if let Some(reply) = reply {
            self.send_plain(now, conn, &reply);
        }
    }

    fn on_req_pq(&mut self, conn: ConnId, nonce: [u8; 16]) -> Vec<u8> {
        let mut server_nonce = [0u8; 16];
        self.rng.fill_bytes(&mut server_nonce);
        let p = random_prime(&mut self.rng);
        let mut q = random_prime(&mut self.rng);
        while q == p {
            q = random_prime(&mut self.rng);
        }
        let (p, q) = (p.min(q), p.max(q));
        let fingerprint = self.config.rsa_key.public_key().fingerprint();
        let faults = &self.config.handshake_faults;
        let mut echoed = nonce;
        if faults.wrong_nonce {
            echoed[0] ^= 0xff;
        }
        let fingerprints = if faults.no_matching_fingerprint {
            vec![fingerprint.wrapping_add(1)]
        } else {
            vec![fingerprint]
        };
        if let Some(hs) = self.conn_handshake(conn) {
            *hs = Some(PendingHandshake::ResPq {
                nonce,
                server_nonce,
                p,
                q,
            });
        }
        t::ResPq {
            nonce: echoed,
            server_nonce,
            pq: be_min(u64::from(p) * u64::from(q)),
            server_public_key_fingerprints: fingerprints,
        }
        .to_bytes()
    }

    /// Decrypts `p_q_inner_data*` with RSA_PAD, or failing that with the
    /// legacy format.
    fn decrypt_inner_data(&self, encrypted: &[u8]) -> Option<enums::PQInnerData> {
        let key = &self.config.rsa_key;
        if let Ok(data) = key.rsa_pad_decrypt(encrypted) {
            let mut r = Reader::new(&data);
            if let Ok(inner) = enums::PQInnerData::deserialize(&mut r) {
                return Some(inner);
            }
        }
        let decrypted = key.legacy_decrypt(encrypted).ok()?;
        let mut r = Reader::new(&decrypted[20..]);
        let inner = enums::PQInnerData::deserialize(&mut r).ok()?;
        crypto::legacy_check(&decrypted, r.pos()).ok()?;
        Some(inner)
    }

    fn dc_accepted(&self, dc: i32) -> bool {
        let id = self.config.dc_id;
        let test = id.saturating_add(10_000);
        [id, test, id.saturating_neg(), test.saturating_neg()].contains(&dc)
    }

    fn on_req_dh_params(
        &mut self,
        now: Instant,
        conn: ConnId,
        req: f::ReqDhParams,
    ) -> Option<Vec<u8>> {
        let Some(PendingHandshake::ResPq {
            nonce,
            server_nonce,
            p,
            q,
        }) = self.conn_handshake(conn)?.take()
        else {
            return None;
        };
        if req.nonce != nonce
            || req.server_nonce != server_nonce
            || be_to_u64(&req.p) != Some(u64::from(p))
            || be_to_u64(&req.q) != Some(u64::from(q))
            || req.public_key_fingerprint != self.config.rsa_key.public_key().fingerprint()
        {
            return None;
        }
        let inner = self.decrypt_inner_data(&req.encrypted_data)?;
        let pq = u64::from(p) * u64::from(q);
        let (common, dc, expires_in) = match &inner {
            enums::PQInnerData::Legacy(i) => (
                (&i.pq, &i.p, &i.q, i.nonce, i.server_nonce, i.new_nonce),
                None,
                None,
            ),
            enums::PQInnerData::Dc(i) => (
                (&i.pq, &i.p, &i.q, i.nonce, i.server_nonce, i.new_nonce),
                Some(i.dc),
                None,
            ),
            enums::PQInnerData::TempDc(i) => (
                (&i.pq, &i.p, &i.q, i.nonce, i.server_nonce, i.new_nonce),
                Some(i.dc),
                Some(i.expires_in),
            ),
            _ => return None,
        };
        let (i_pq, i_p, i_q, i_nonce, i_server_nonce, new_nonce) = common;
        if i_nonce != nonce
            || i_server_nonce != server_nonce
            || be_to_u64(i_pq) != Some(pq)
            || be_to_u64(i_p) != Some(u64::from(p))
            || be_to_u64(i_q) != Some(u64::from(q))
        {
            return None;
        }
        let faults = self.config.handshake_faults.clone();
        let bad_dc = dc.is_some_and(|d| !self.dc_accepted(d));
        let bad_expiry = expires_in.is_some_and(|e| e <= 0);
        if faults.dh_params_fail || bad_dc || bad_expiry {
            return Some(
                t::ServerDhParamsFail {
                    nonce,
                    server_nonce,
                    new_nonce_hash: new_nonce_sha1_low(&new_nonce),
                }
                .to_bytes(),
            );
        }

        let prime = if faults.composite_dh_prime {
            composite_prime()
        } else {
            TELEGRAM_DH_PRIME
        };
        let g: u8 = if faults.bad_g_residue { 2 } else { 3 };
        let mut a = [0u8; 256];
        let g_a = loop {
            self.rng.fill_bytes(&mut a);
            let g_a = crypto::modpow(&[g], &a, &prime);
            if crypto::check_g_range(&g_a, &prime).is_ok() {
                break g_a.to_vec();
            }
        };
        let g_a = match faults.g_a_out_of_range {
            None => g_a,
            Some(BadGa::One) => vec![1],
            Some(BadGa::BelowMargin) => {
                // 2^1983: 248 bytes, the top one 0x80.
                let mut v = vec![0u8; 248];
                v[0] = 0x80;
                v
            }
        };
        let server_time = self.server_secs(now);
        let inner = t::ServerDhInnerData {
            nonce,
            server_nonce,
            g: i32::from(g),
            dh_prime: prime.to_vec(),
            g_a,
            server_time: server_time.clamp(i32::MIN as i64, i32::MAX as i64) as i32,
        }
        .to_bytes();
        let (tmp_key, tmp_iv) = crypto::tmp_aes_key_iv(&new_nonce, &server_nonce);
        let encrypted_answer = if faults.corrupt_answer_hash {
            let mut plain = Sha1::digest(&inner).to_vec();
            plain[0] ^= 1;
            plain.extend_from_slice(&inner);
            let pad = (16 - plain.len() % 16) % 16;
            let mut padding = vec![0u8; pad];
            self.rng.fill_bytes(&mut padding);
            plain.extend_from_slice(&padding);
            crypto::ige_encrypt(&mut plain, &tmp_key, &tmp_iv)
                .expect("padded to whole blocks above");
            plain
        } else {
            crypto::encrypt_dh_answer(&inner, &tmp_key, &tmp_iv, &mut self.rng)
        };
        let mut echoed_server_nonce = server_nonce;
        if faults.wrong_server_nonce {
            echoed_server_nonce[0] ^= 0xff;
        }
        *self.conn_handshake(conn)? = Some(PendingHandshake::Dh(Box::new(DhState {
            nonce,
            server_nonce,
            new_nonce,
            a,
            prime,
            tmp_key,
            tmp_iv,
            expires_in,
            retries_left: faults.dh_gen_retries,
            expected_retry_id: 0,
        })));
        Some(
            t::ServerDhParamsOk {
                nonce,
                server_nonce: echoed_server_nonce,
                encrypted_answer,
            }
            .to_bytes(),
        )
    }

    fn on_set_client_dh_params(
        &mut self,
        now: Instant,
        conn: ConnId,
        req: f::SetClientDhParams,
    ) -> Option<Vec<u8>> {
        let slot = self.conn_handshake(conn)?;
        let Some(PendingHandshake::Dh(mut st)) = slot.take() else {
            return None;
        };
        if req.nonce != st.nonce || req.server_nonce != st.server_nonce {
            return None;
        }
        let decrypted =
            crypto::decrypt_dh_answer(&req.encrypted_data, &st.tmp_key, &st.tmp_iv).ok()?;
        let mut r = Reader::new(decrypted.get(20..)?);
        let inner = t::ClientDhInnerData::deserialize(&mut r).ok()?;
        crypto::check_dh_answer_hash(&decrypted, r.pos()).ok()?;
        if inner.nonce != st.nonce || inner.server_nonce != st.server_nonce {
            return None;
        }
        let (nonce, server_nonce, new_nonce) = (st.nonce, st.server_nonce, st.new_nonce);
        let range = crypto::check_g_range(&inner.g_b, &st.prime);
        if inner.retry_id != st.expected_retry_id || range.is_err() {
            // The key cannot be trusted; new_nonce_hash3 over a zero aux hash.
            return Some(
                t::DhGenFail {
                    nonce,
                    server_nonce,
                    new_nonce_hash3: crypto::new_nonce_hash(&new_nonce, 0, 3),
                }
                .to_bytes(),
            );
        }
        let key = AuthKey::from_bytes(crypto::modpow(&inner.g_b, &st.a, &st.prime));
        let aux = key.aux_hash();
        let faults = self.config.handshake_faults.clone();
        if faults.dh_gen_fail {
            return Some(
                t::DhGenFail {
                    nonce,
                    server_nonce,
                    new_nonce_hash3: crypto::new_nonce_hash(&new_nonce, aux, 3),
                }
                .to_bytes(),
            );
        }
        let collides = self.keys.contains_key(&key.id());
        if st.retries_left > 0 || collides {
            st.retries_left = st.retries_left.saturating_sub(1);
            st.expected_retry_id = aux;
            self.stats.dh_gen_retries += 1;
            *self.conn_handshake(conn)? = Some(PendingHandshake::Dh(st));
            return Some(
                t::DhGenRetry {
                    nonce,
                    server_nonce,
                    new_nonce_hash2: crypto::new_nonce_hash(&new_nonce, aux, 2),
                }
                .to_bytes(),
            );
        }
        let secs = self.server_secs(now);
        let salts = Salts::new(
            self.config.seed,
            key.id(),
            crypto::first_salt(&new_nonce, &server_nonce),
            secs,
            self.config.salt_period.as_secs(),
            self.config.salt_grace.as_secs(),
        );
        self.stats.handshakes += 1;
        if st.expires_in.is_some() {
            self.stats.temp_keys += 1;
        }
        let mut hash1 = crypto::new_nonce_hash(&new_nonce, aux, 1);
        if faults.wrong_new_nonce_hash1 {
            hash1[0] ^= 1;
        } else {
            self.keys.insert(
                key.id(),
                KeyState {
                    key,
                    expires_at: st.expires_in.map(|e| secs + i64::from(e)),
                    salts,
                    bound_to: None,
                },
            );
        }
        Some(
            t::DhGenOk {
                nonce,
                server_nonce,
                new_nonce_hash1: hash1,
            }
            .to_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtsender::crypto::DhError;

    #[test]
    fn primes() {
        assert!(is_prime(2));
        assert!(is_prime(1_000_000_007));
        assert!(!is_prime(1_000_000_007 * 3 % (1 << 31)));
        assert!(!is_prime(1));
        assert!(is_prime(2_147_483_647));
        let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([1; 32]);
        for _ in 0..20 {
            let p = random_prime(&mut rng);
            assert!((1 << 30..1 << 31).contains(&p) && is_prime(p));
        }
    }

    #[test]
    fn composite_prime_keeps_size_and_residue_but_is_refused() {
        let p = composite_prime();
        assert_eq!(p[0], TELEGRAM_DH_PRIME[0]);
        assert_ne!(p, TELEGRAM_DH_PRIME);
        assert_eq!(crypto::check_dh_params(&p, 3), Err(DhError::NotSafePrime));
        assert_eq!(
            crypto::check_dh_params(&TELEGRAM_DH_PRIME, 2),
            Err(DhError::BadGResidue)
        );
    }

    #[test]
    fn be_helpers() {
        assert_eq!(be_min(0x0102), vec![1, 2]);
        assert_eq!(be_min(0), vec![0]);
        assert_eq!(be_to_u64(&[1, 2]), Some(0x0102));
        assert_eq!(be_to_u64(&[0; 9]), None);
    }
}
