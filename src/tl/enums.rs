//! TL types with more than one constructor, as enums over the structs of
//! [`super::types`].

use super::types;

tl_enum! {
    /// `P_Q_inner_data`: what the client encrypts with the server's RSA key.
    PQInnerData {
        /// Legacy, no DC.
        Legacy(types::PQInnerData),
        /// Permanent key for a DC.
        Dc(types::PQInnerDataDc),
        /// Temporary key for a DC.
        TempDc(types::PQInnerDataTempDc),
    }
}

tl_enum! {
    /// `Server_DH_Params`.
    ServerDhParams {
        /// Failure.
        Fail(types::ServerDhParamsFail),
        /// The encrypted DH parameters.
        Ok(types::ServerDhParamsOk),
    }
}

tl_enum! {
    /// `Set_client_DH_params_answer`.
    SetClientDhParamsAnswer {
        /// Key created.
        Ok(types::DhGenOk),
        /// Try again with another b.
        Retry(types::DhGenRetry),
        /// Failed.
        Fail(types::DhGenFail),
    }
}

tl_enum! {
    /// `RpcDropAnswer`.
    RpcDropAnswer {
        /// Nothing known about the query.
        Unknown(types::RpcAnswerUnknown),
        /// The query was running; its answer will not be sent.
        DroppedRunning(types::RpcAnswerDroppedRunning),
        /// The answer was dropped.
        Dropped(types::RpcAnswerDropped),
    }
}

tl_enum! {
    /// `DestroySessionRes`.
    DestroySessionRes {
        /// Destroyed.
        Ok(types::DestroySessionOk),
        /// No such session.
        None(types::DestroySessionNone),
    }
}

tl_enum! {
    /// `BadMsgNotification`.
    BadMsgNotification {
        /// Any code but 48.
        BadMsg(types::BadMsgNotification),
        /// Code 48, with the salt to use.
        BadServerSalt(types::BadServerSalt),
    }
}

tl_enum! {
    /// `MsgResendReq`.
    MsgResendReq {
        /// Resend these messages.
        Messages(types::MsgResendReq),
        /// Resend the answers to these queries.
        Answers(types::MsgResendAnsReq),
    }
}

tl_enum! {
    /// `MsgDetailedInfo`.
    MsgDetailedInfo {
        /// The answer to a known query.
        Known(types::MsgDetailedInfo),
        /// An answer with no known query.
        New(types::MsgNewDetailedInfo),
    }
}

tl_enum! {
    /// `DestroyAuthKeyRes`.
    DestroyAuthKeyRes {
        /// Destroyed.
        Ok(types::DestroyAuthKeyOk),
        /// No such key.
        None(types::DestroyAuthKeyNone),
        /// Failed.
        Fail(types::DestroyAuthKeyFail),
    }
}
