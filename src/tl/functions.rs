//! MTProto methods, and the API-layer wrappers a sender puts around requests.
//!
//! Wrapped queries (`!X`) are [`RawTail`]: the inner request's TL bytes,
//! written verbatim as the last field.

use super::{Deserialize, Identifiable, RawTail, Reader, Result, Serialize};

tl_constructor! {
    /// `req_pq` (legacy).
    ReqPq = 0x60469778 {
        /// Random client nonce.
        nonce: [u8; 16],
    }
}

tl_constructor! {
    /// `req_pq_multi`: start of auth key creation.
    ReqPqMulti = 0xbe7e8ef1 {
        /// Random client nonce.
        nonce: [u8; 16],
    }
}

tl_constructor! {
    /// `req_DH_params`.
    ReqDhParams = 0xd712e4be {
        /// Client nonce.
        nonce: [u8; 16],
        /// Server nonce.
        server_nonce: [u8; 16],
        /// Smaller factor of pq, big-endian.
        p: Vec<u8>,
        /// Larger factor, big-endian.
        q: Vec<u8>,
        /// Fingerprint of the RSA key used.
        public_key_fingerprint: i64,
        /// RSA-encrypted `P_Q_inner_data`.
        encrypted_data: Vec<u8>,
    }
}

tl_constructor! {
    /// `set_client_DH_params`.
    SetClientDhParams = 0xf5045f1f {
        /// Client nonce.
        nonce: [u8; 16],
        /// Server nonce.
        server_nonce: [u8; 16],
        /// AES-IGE encrypted `client_DH_inner_data`.
        encrypted_data: Vec<u8>,
    }
}

tl_constructor! {
    /// `rpc_drop_answer`: cancel a query's answer.
    RpcDropAnswer = 0x58e4a740 {
        /// The query.
        req_msg_id: i64,
    }
}

tl_constructor! {
    /// `get_future_salts`.
    GetFutureSalts = 0xb921bd04 {
        /// How many salts (the server caps it at 64).
        num: i32,
    }
}

tl_constructor! {
    /// `ping`.
    Ping = 0x7abe77ec {
        /// Random id, echoed in `pong`.
        ping_id: i64,
    }
}

tl_constructor! {
    /// `ping_delay_disconnect`: ping, and ask the server to close the
    /// connection if no other ping comes within `disconnect_delay` seconds.
    PingDelayDisconnect = 0xf3427b8c {
        /// Random id, echoed in `pong`.
        ping_id: i64,
        /// Seconds.
        disconnect_delay: i32,
    }
}

tl_constructor! {
    /// `destroy_session`.
    DestroySession = 0xe7512126 {
        /// Session to destroy.
        session_id: i64,
    }
}

tl_constructor! {
    /// `http_wait` (HTTP transport long poll).
    HttpWait = 0x9299359f {
        /// Milliseconds.
        max_delay: i32,
        /// Milliseconds.
        wait_after: i32,
        /// Milliseconds.
        max_wait: i32,
    }
}

tl_constructor! {
    /// `destroy_auth_key`.
    DestroyAuthKey = 0xd1435160 {}
}

tl_constructor! {
    /// `test.echo`: the test DCs of this project answer with the request body
    /// verbatim (not a Telegram method).
    TestEcho = 0x0c0ffee0 {
        /// Anything.
        payload: Vec<u8>,
    }
}

tl_constructor! {
    /// `invokeWithLayer`: run `query` with API layer `layer`.
    InvokeWithLayer = 0xda9b0d0d {
        /// API layer.
        layer: i32,
        /// The wrapped request.
        query: RawTail,
    }
}

tl_constructor! {
    /// `invokeWithoutUpdates`.
    InvokeWithoutUpdates = 0xbf9459b7 {
        /// The wrapped request.
        query: RawTail,
    }
}

tl_constructor! {
    /// `invokeAfterMsg`.
    InvokeAfterMsg = 0xcb9f372d {
        /// Run after this message.
        msg_id: i64,
        /// The wrapped request.
        query: RawTail,
    }
}

tl_constructor! {
    /// `auth.bindTempAuthKey`.
    BindTempAuthKey = 0xcdd42a05 {
        /// Id of the permanent key.
        perm_auth_key_id: i64,
        /// Nonce of the `bind_auth_key_inner`.
        nonce: i64,
        /// Expiry, unix time.
        expires_at: i32,
        /// `bind_auth_key_inner` encrypted with the permanent key (MTProto 1.0 style).
        encrypted_message: Vec<u8>,
    }
}

/// `initConnection`: the client's description, wrapped around the first
/// request of a connection. `proxy` (`flags.0?InputClientProxy`) and
/// `params` (`flags.1?JSONValue`) are API-layer objects, kept as their raw
/// TL bytes; the flags word is derived from which of them are present.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct InitConnection {
    /// Application id from my.telegram.org.
    pub api_id: i32,
    /// Device model.
    pub device_model: String,
    /// OS version.
    pub system_version: String,
    /// Application version.
    pub app_version: String,
    /// OS language code.
    pub system_lang_code: String,
    /// Language pack name.
    pub lang_pack: String,
    /// Language code.
    pub lang_code: String,
    /// Serialized `InputClientProxy`, if any.
    pub proxy: Option<Vec<u8>>,
    /// Serialized `JSONValue`, if any.
    pub params: Option<Vec<u8>>,
    /// The wrapped request.
    pub query: RawTail,
}

impl Identifiable for InitConnection {
    const CONSTRUCTOR_ID: u32 = 0xc1cd5ea9;
}

impl Serialize for InitConnection {
    fn serialize(&self, out: &mut Vec<u8>) {
        Self::CONSTRUCTOR_ID.serialize(out);
        let flags = (self.proxy.is_some() as u32) | ((self.params.is_some() as u32) << 1);
        flags.serialize(out);
        self.api_id.serialize(out);
        self.device_model.serialize(out);
        self.system_version.serialize(out);
        self.app_version.serialize(out);
        self.system_lang_code.serialize(out);
        self.lang_pack.serialize(out);
        self.lang_code.serialize(out);
        for raw in [&self.proxy, &self.params].into_iter().flatten() {
            out.extend_from_slice(raw);
        }
        self.query.serialize(out);
    }
}

impl<'a> Deserialize<'a> for InitConnection {
    /// Reads an `initConnection`. Proxy and params objects cannot be
    /// delimited without the API schema, so a value carrying either is
    /// refused ([`Error::UnexpectedConstructor`](super::Error) at the flags).
    fn deserialize(r: &mut Reader<'a>) -> Result<Self> {
        r.expect_id(Self::CONSTRUCTOR_ID)?;
        let at = r.pos();
        let flags = r.read_u32()?;
        if flags != 0 {
            return Err(super::Error::UnexpectedConstructor { got: flags, at });
        }
        Ok(Self {
            api_id: r.read_i32()?,
            device_model: String::deserialize(r)?,
            system_version: String::deserialize(r)?,
            app_version: String::deserialize(r)?,
            system_lang_code: String::deserialize(r)?,
            lang_pack: String::deserialize(r)?,
            lang_code: String::deserialize(r)?,
            proxy: None,
            params: None,
            query: RawTail::deserialize(r)?,
        })
    }
}

#[cfg(test)]
impl proptest::arbitrary::Arbitrary for InitConnection {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        use crate::tl::arb::ArbField;
        use proptest::prelude::*;
        (
            any::<i32>(),
            [any::<String>(), any::<String>(), any::<String>()],
            [any::<String>(), any::<String>(), any::<String>()],
            RawTail::arb(),
        )
            .prop_map(|(api_id, [a, b, c], [d, e, f], query)| Self {
                api_id,
                device_model: a,
                system_version: b,
                app_version: c,
                system_lang_code: d,
                lang_pack: e,
                lang_code: f,
                proxy: None,
                params: None,
                query,
            })
            .boxed()
    }
}
