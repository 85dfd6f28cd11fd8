//! [`Object`]: any boxed constructor of the service schema, by its id.

use super::{functions as f, types as t};

macro_rules! objects {
    ($( $(#[$vmeta:meta])* $variant:ident($ty:path) ),+ $(,)?) => {
        /// Any boxed constructor of the MTProto service schema (types and
        /// methods), read by dispatching on the constructor id.
        ///
        /// The hand-parsed forms (`rpc_result`, `msg_container`, `msg_copy`)
        /// are not here: see [`message`](super::message). An id that is none
        /// of these is an [`Error::UnexpectedConstructor`](super::Error):
        /// for a session, an API-layer object (an update, say).
        #[derive(Clone, Debug, PartialEq)]
        #[non_exhaustive]
        #[allow(missing_docs)]
        pub enum Object {
            $( $(#[$vmeta])* $variant($ty), )+
        }

        impl Object {
            /// The constructor id of the value held.
            pub fn constructor_id(&self) -> u32 {
                match self {
                    $( Self::$variant(_) => <$ty as super::Identifiable>::CONSTRUCTOR_ID, )+
                }
            }

            /// Whether `id` is the id of a constructor [`Object`] can hold.
            pub fn is_known(id: u32) -> bool {
                $( id == <$ty as super::Identifiable>::CONSTRUCTOR_ID || )+ false
            }
        }

        impl super::Serialize for Object {
            fn serialize(&self, out: &mut Vec<u8>) {
                match self {
                    $( Self::$variant(x) => super::Serialize::serialize(x, out), )+
                }
            }
        }

        impl<'a> super::Deserialize<'a> for Object {
            fn deserialize(r: &mut super::Reader<'a>) -> super::Result<Self> {
                let at = r.pos();
                let id = r.peek_u32()?;
                $(
                    if id == <$ty as super::Identifiable>::CONSTRUCTOR_ID {
                        return <$ty as super::Deserialize>::deserialize(r).map(Self::$variant);
                    }
                )+
                Err(super::Error::UnexpectedConstructor { got: id, at })
            }
        }

        #[cfg(test)]
        impl proptest::arbitrary::Arbitrary for Object {
            type Parameters = ();
            type Strategy = proptest::strategy::BoxedStrategy<Self>;
            fn arbitrary_with(_: ()) -> Self::Strategy {
                use proptest::strategy::Strategy;
                proptest::strategy::Union::new(vec![
                    $( proptest::arbitrary::any::<$ty>().prop_map(Self::$variant).boxed(), )+
                ]).boxed()
            }
        }

        #[cfg(test)]
        /// Every constructor id [`Object`] knows, for tests that must cover them all.
        pub(crate) const ALL_IDS: &[u32] = &[
            $( <$ty as super::Identifiable>::CONSTRUCTOR_ID, )+
        ];
    };
}

objects! {
    ResPq(t::ResPq),
    PQInnerData(t::PQInnerData),
    PQInnerDataDc(t::PQInnerDataDc),
    PQInnerDataTempDc(t::PQInnerDataTempDc),
    ServerDhParamsFail(t::ServerDhParamsFail),
    ServerDhParamsOk(t::ServerDhParamsOk),
    ServerDhInnerData(t::ServerDhInnerData),
    ClientDhInnerData(t::ClientDhInnerData),
    DhGenOk(t::DhGenOk),
    DhGenRetry(t::DhGenRetry),
    DhGenFail(t::DhGenFail),
    BindAuthKeyInner(t::BindAuthKeyInner),
    RpcError(t::RpcError),
    RpcAnswerUnknown(t::RpcAnswerUnknown),
    RpcAnswerDroppedRunning(t::RpcAnswerDroppedRunning),
    RpcAnswerDropped(t::RpcAnswerDropped),
    FutureSalt(t::FutureSalt),
    FutureSalts(t::FutureSalts),
    Pong(t::Pong),
    DestroySessionOk(t::DestroySessionOk),
    DestroySessionNone(t::DestroySessionNone),
    NewSessionCreated(t::NewSessionCreated),
    GzipPacked(t::GzipPacked),
    MsgsAck(t::MsgsAck),
    BadMsgNotification(t::BadMsgNotification),
    BadServerSalt(t::BadServerSalt),
    MsgResendReq(t::MsgResendReq),
    MsgResendAnsReq(t::MsgResendAnsReq),
    MsgsStateReq(t::MsgsStateReq),
    MsgsStateInfo(t::MsgsStateInfo),
    MsgsAllInfo(t::MsgsAllInfo),
    MsgDetailedInfo(t::MsgDetailedInfo),
    MsgNewDetailedInfo(t::MsgNewDetailedInfo),
    DestroyAuthKeyOk(t::DestroyAuthKeyOk),
    DestroyAuthKeyNone(t::DestroyAuthKeyNone),
    DestroyAuthKeyFail(t::DestroyAuthKeyFail),
    ReqPq(f::ReqPq),
    ReqPqMulti(f::ReqPqMulti),
    ReqDhParams(f::ReqDhParams),
    SetClientDhParams(f::SetClientDhParams),
    RpcDropAnswer(f::RpcDropAnswer),
    GetFutureSalts(f::GetFutureSalts),
    Ping(f::Ping),
    PingDelayDisconnect(f::PingDelayDisconnect),
    DestroySession(f::DestroySession),
    HttpWait(f::HttpWait),
    DestroyAuthKey(f::DestroyAuthKey),
    TestEcho(f::TestEcho),
    InvokeWithLayer(f::InvokeWithLayer),
    InvokeWithoutUpdates(f::InvokeWithoutUpdates),
    InvokeAfterMsg(f::InvokeAfterMsg),
    InitConnection(f::InitConnection),
    BindTempAuthKey(f::BindTempAuthKey),
}
