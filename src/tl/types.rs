//! The boxed constructors of the MTProto service schema, one struct each.
//!
//! `int128`/`int256` fields are the wire bytes; `bytes`/`string` fields that
//! hold binary data (big-endian numbers, encrypted blobs) are `Vec<u8>`.

tl_constructor! {
    /// `resPQ`: the server's answer to `req_pq_multi`.
    ResPq = 0x05162463 {
        /// The client's nonce, echoed.
        nonce: [u8; 16],
        /// The server's nonce.
        server_nonce: [u8; 16],
        /// The product to factor, big-endian.
        pq: Vec<u8>,
        /// Fingerprints of the RSA keys the server accepts.
        server_public_key_fingerprints: Vec<i64>,
    }
}

tl_constructor! {
    /// `p_q_inner_data` (legacy: no DC id).
    PQInnerData = 0x83c95aec {
        /// The product, big-endian.
        pq: Vec<u8>,
        /// Smaller factor, big-endian.
        p: Vec<u8>,
        /// Larger factor, big-endian.
        q: Vec<u8>,
        /// Client nonce.
        nonce: [u8; 16],
        /// Server nonce.
        server_nonce: [u8; 16],
        /// The client's secret nonce.
        new_nonce: [u8; 32],
    }
}

tl_constructor! {
    /// `p_q_inner_data_dc`: a permanent key for a given DC.
    PQInnerDataDc = 0xa9f55f95 {
        /// The product, big-endian.
        pq: Vec<u8>,
        /// Smaller factor, big-endian.
        p: Vec<u8>,
        /// Larger factor, big-endian.
        q: Vec<u8>,
        /// Client nonce.
        nonce: [u8; 16],
        /// Server nonce.
        server_nonce: [u8; 16],
        /// The client's secret nonce.
        new_nonce: [u8; 32],
        /// DC id (test DCs +10000, media DCs negative).
        dc: i32,
    }
}

tl_constructor! {
    /// `p_q_inner_data_temp_dc`: a temporary key (for PFS) for a given DC.
    PQInnerDataTempDc = 0x56fddf88 {
        /// The product, big-endian.
        pq: Vec<u8>,
        /// Smaller factor, big-endian.
        p: Vec<u8>,
        /// Larger factor, big-endian.
        q: Vec<u8>,
        /// Client nonce.
        nonce: [u8; 16],
        /// Server nonce.
        server_nonce: [u8; 16],
        /// The client's secret nonce.
        new_nonce: [u8; 32],
        /// DC id.
        dc: i32,
        /// Lifetime of the key, seconds.
        expires_in: i32,
    }
}

tl_constructor! {
    /// `server_DH_params_fail`.
    ServerDhParamsFail = 0x79cb045d {
        /// Client nonce.
        nonce: [u8; 16],
        /// Server nonce.
        server_nonce: [u8; 16],
        /// Hash of new_nonce proving the server read the request.
        new_nonce_hash: [u8; 16],
    }
}

tl_constructor! {
    /// `server_DH_params_ok`.
    ServerDhParamsOk = 0xd0e8075c {
        /// Client nonce.
        nonce: [u8; 16],
        /// Server nonce.
        server_nonce: [u8; 16],
        /// `server_DH_inner_data`, hashed, padded and AES-IGE encrypted.
        encrypted_answer: Vec<u8>,
    }
}

tl_constructor! {
    /// `server_DH_inner_data`: the server's DH parameters.
    ServerDhInnerData = 0xb5890dba {
        /// Client nonce.
        nonce: [u8; 16],
        /// Server nonce.
        server_nonce: [u8; 16],
        /// Generator.
        g: i32,
        /// The 2048-bit safe prime, big-endian.
        dh_prime: Vec<u8>,
        /// g^a mod dh_prime, big-endian.
        g_a: Vec<u8>,
        /// Server unix time.
        server_time: i32,
    }
}

tl_constructor! {
    /// `client_DH_inner_data`: the client's half of DH.
    ClientDhInnerData = 0x6643b654 {
        /// Client nonce.
        nonce: [u8; 16],
        /// Server nonce.
        server_nonce: [u8; 16],
        /// 0 first, then the previous attempt's auth_key_aux_hash.
        retry_id: i64,
        /// g^b mod dh_prime, big-endian.
        g_b: Vec<u8>,
    }
}

tl_constructor! {
    /// `dh_gen_ok`: the key is created.
    DhGenOk = 0x3bcbf734 {
        /// Client nonce.
        nonce: [u8; 16],
        /// Server nonce.
        server_nonce: [u8; 16],
        /// new_nonce_hash1.
        new_nonce_hash1: [u8; 16],
    }
}

tl_constructor! {
    /// `dh_gen_retry`: retry with a new b.
    DhGenRetry = 0x46dc1fb9 {
        /// Client nonce.
        nonce: [u8; 16],
        /// Server nonce.
        server_nonce: [u8; 16],
        /// new_nonce_hash2.
        new_nonce_hash2: [u8; 16],
    }
}

tl_constructor! {
    /// `dh_gen_fail`.
    DhGenFail = 0xa69dae02 {
        /// Client nonce.
        nonce: [u8; 16],
        /// Server nonce.
        server_nonce: [u8; 16],
        /// new_nonce_hash3.
        new_nonce_hash3: [u8; 16],
    }
}

tl_constructor! {
    /// `bind_auth_key_inner`: the message inside `auth.bindTempAuthKey`.
    BindAuthKeyInner = 0x75a3f765 {
        /// Random nonce (also passed to the method).
        nonce: i64,
        /// Id of the temporary key.
        temp_auth_key_id: i64,
        /// Id of the permanent key.
        perm_auth_key_id: i64,
        /// Session id of the temporary key's session.
        temp_session_id: i64,
        /// Unix time the binding expires.
        expires_at: i32,
    }
}

tl_constructor! {
    /// `rpc_error`.
    RpcError = 0x2144ca19 {
        /// HTTP-like error code (303, 400, 420, 500, ...).
        error_code: i32,
        /// Error name, e.g. `FLOOD_WAIT_30`.
        error_message: String,
    }
}

tl_constructor! {
    /// `rpc_answer_unknown`.
    RpcAnswerUnknown = 0x5e2ad36e {}
}

tl_constructor! {
    /// `rpc_answer_dropped_running`.
    RpcAnswerDroppedRunning = 0xcd78e586 {}
}

tl_constructor! {
    /// `rpc_answer_dropped`.
    RpcAnswerDropped = 0xa43ad8b7 {
        /// Id of the answer message that was dropped.
        msg_id: i64,
        /// Its seq_no.
        seq_no: i32,
        /// Its length.
        bytes: i32,
    }
}

tl_constructor! {
    /// `future_salt` (appears bare inside `future_salts`).
    FutureSalt = 0x0949d9dc {
        /// Unix time from which the salt is valid.
        valid_since: i32,
        /// Unix time until which it is valid.
        valid_until: i32,
        /// The salt.
        salt: i64,
    }
}

/// `future_salts#ae500895 req_msg_id:long now:int salts:vector<future_salt>`:
/// the salts vector is bare and so are its elements.
#[derive(Clone, Debug, PartialEq)]
pub struct FutureSalts {
    /// The `get_future_salts` this answers.
    pub req_msg_id: i64,
    /// Server unix time.
    pub now: i32,
    /// The salts, oldest first.
    pub salts: Vec<FutureSalt>,
}

impl crate::tl::Identifiable for FutureSalts {
    const CONSTRUCTOR_ID: u32 = 0xae500895;
}

impl crate::tl::Serialize for FutureSalts {
    fn serialize(&self, out: &mut Vec<u8>) {
        use crate::tl::Identifiable;
        Self::CONSTRUCTOR_ID.serialize(out);
        self.serialize_bare(out);
    }
}

impl<'a> crate::tl::Deserialize<'a> for FutureSalts {
    fn deserialize(r: &mut crate::tl::Reader<'a>) -> crate::tl::Result<Self> {
        use crate::tl::Identifiable;
        r.expect_id(Self::CONSTRUCTOR_ID)?;
        Self::deserialize_bare(r)
    }
}

impl FutureSalts {
    /// Writes the fields without the constructor id.
    pub fn serialize_bare(&self, out: &mut Vec<u8>) {
        use crate::tl::Serialize;
        self.req_msg_id.serialize(out);
        self.now.serialize(out);
        (self.salts.len() as i32).serialize(out);
        for s in &self.salts {
            s.serialize_bare(out);
        }
    }

    /// Reads the fields after the constructor id.
    pub fn deserialize_bare(r: &mut crate::tl::Reader<'_>) -> crate::tl::Result<Self> {
        let req_msg_id = r.read_i64()?;
        let now = r.read_i32()?;
        let count = r.read_vector_len(false, 16)?;
        let mut salts = Vec::with_capacity(count);
        for _ in 0..count {
            salts.push(FutureSalt::deserialize_bare(r)?);
        }
        Ok(Self {
            req_msg_id,
            now,
            salts,
        })
    }
}

#[cfg(test)]
impl proptest::arbitrary::Arbitrary for FutureSalts {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        use proptest::prelude::*;
        (
            any::<i64>(),
            any::<i32>(),
            proptest::collection::vec(any::<FutureSalt>(), 0..8),
        )
            .prop_map(|(req_msg_id, now, salts)| Self {
                req_msg_id,
                now,
                salts,
            })
            .boxed()
    }
}

tl_constructor! {
    /// `pong`.
    Pong = 0x347773c5 {
        /// Id of the message carrying the ping.
        msg_id: i64,
        /// The ping's id, echoed.
        ping_id: i64,
    }
}

tl_constructor! {
    /// `destroy_session_ok`.
    DestroySessionOk = 0xe22045fc {
        /// The destroyed session.
        session_id: i64,
    }
}

tl_constructor! {
    /// `destroy_session_none`.
    DestroySessionNone = 0x62d350c9 {
        /// The session that did not exist.
        session_id: i64,
    }
}

tl_constructor! {
    /// `new_session_created`.
    NewSessionCreated = 0x9ec20908 {
        /// First client message id the new session has seen.
        first_msg_id: i64,
        /// Random id of the new session.
        unique_id: i64,
        /// The current server salt.
        server_salt: i64,
    }
}

tl_constructor! {
    /// `gzip_packed`, as a TL object. To inflate, see
    /// [`message::inflate`](crate::tl::message::inflate).
    GzipPacked = 0x3072cfa1 {
        /// gzip stream.
        packed_data: Vec<u8>,
    }
}

tl_constructor! {
    /// `msgs_ack`.
    MsgsAck = 0x62d6b459 {
        /// Acknowledged message ids (at most 8192 per message).
        msg_ids: Vec<i64>,
    }
}

tl_constructor! {
    /// `bad_msg_notification`.
    BadMsgNotification = 0xa7eff811 {
        /// The refused message.
        bad_msg_id: i64,
        /// Its seq_no.
        bad_msg_seqno: i32,
        /// Why (16, 17, 18, 19, 20, 32, 33, 34, 35, 48, 64).
        error_code: i32,
    }
}

tl_constructor! {
    /// `bad_server_salt`.
    BadServerSalt = 0xedab447b {
        /// The refused message.
        bad_msg_id: i64,
        /// Its seq_no.
        bad_msg_seqno: i32,
        /// 48.
        error_code: i32,
        /// The salt to use.
        new_server_salt: i64,
    }
}

tl_constructor! {
    /// `msg_resend_req`: ask the peer to resend these messages.
    MsgResendReq = 0x7d861a08 {
        /// Message ids.
        msg_ids: Vec<i64>,
    }
}

tl_constructor! {
    /// `msg_resend_ans_req`: ask the server to resend the answers to these queries.
    MsgResendAnsReq = 0x8610baeb {
        /// Query message ids.
        msg_ids: Vec<i64>,
    }
}

tl_constructor! {
    /// `msgs_state_req`.
    MsgsStateReq = 0xda69fb52 {
        /// Message ids whose state is asked.
        msg_ids: Vec<i64>,
    }
}

tl_constructor! {
    /// `msgs_state_info`: one status byte per asked id.
    MsgsStateInfo = 0x04deb57d {
        /// The `msgs_state_req` this answers.
        req_msg_id: i64,
        /// Status bytes, in the order of the request's ids.
        info: Vec<u8>,
    }
}

tl_constructor! {
    /// `msgs_all_info`: voluntary state of messages.
    MsgsAllInfo = 0x8cc0d131 {
        /// Message ids.
        msg_ids: Vec<i64>,
        /// One status byte per id.
        info: Vec<u8>,
    }
}

tl_constructor! {
    /// `msg_detailed_info`: the answer to a query is ready.
    MsgDetailedInfo = 0x276d3ec6 {
        /// The query.
        msg_id: i64,
        /// The answer's message id.
        answer_msg_id: i64,
        /// The answer's length.
        bytes: i32,
        /// Status (0 so far).
        status: i32,
    }
}

tl_constructor! {
    /// `msg_new_detailed_info`: an answer without a known query.
    MsgNewDetailedInfo = 0x809db6df {
        /// The answer's message id.
        answer_msg_id: i64,
        /// Its length.
        bytes: i32,
        /// Status (0 so far).
        status: i32,
    }
}

tl_constructor! {
    /// `destroy_auth_key_ok`.
    DestroyAuthKeyOk = 0xf660e1d4 {}
}

tl_constructor! {
    /// `destroy_auth_key_none`.
    DestroyAuthKeyNone = 0x0a9f2259 {}
}

tl_constructor! {
    /// `destroy_auth_key_fail`.
    DestroyAuthKeyFail = 0xea109b13 {}
}

/// `rsa_public_key n:string e:string`: bare, no constructor id. Its TL form is
/// what an RSA key's fingerprint is computed over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsaPublicKey {
    /// Modulus, big-endian, no leading zeros.
    pub n: Vec<u8>,
    /// Public exponent, big-endian, no leading zeros.
    pub e: Vec<u8>,
}

impl crate::tl::Serialize for RsaPublicKey {
    fn serialize(&self, out: &mut Vec<u8>) {
        crate::tl::write_bytes(out, &self.n);
        crate::tl::write_bytes(out, &self.e);
    }
}

impl<'a> crate::tl::Deserialize<'a> for RsaPublicKey {
    fn deserialize(r: &mut crate::tl::Reader<'a>) -> crate::tl::Result<Self> {
        Ok(Self {
            n: r.read_bytes()?.to_vec(),
            e: r.read_bytes()?.to_vec(),
        })
    }
}
