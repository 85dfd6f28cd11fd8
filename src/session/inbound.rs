//! Processing of decrypted server messages: the inbound checks, then one
//! handler per service message.

use std::time::Instant;

use std::collections::VecDeque;

use super::{InboundError, Kind, MsgIdSlabMap, RpcError, Sent, Session, SessionEvent};
use crate::session::ids::{msg_id_secs, MsgIdError};
use crate::tl::message::{
    parse_msg_copy, unpack_gzip, Container, RpcResult, GZIP_PACKED_ID, MSG_CONTAINER_ID,
    MSG_COPY_ID, RPC_RESULT_ID,
};
use crate::tl::{enums, types, Deserialize, Identifiable, Reader, Serialize};

/// Server msg_ids may be this far behind the server's time…
const WINDOW_PAST_SECS: i64 = 300;
/// …and this far ahead of it.
const WINDOW_FUTURE_SECS: i64 = 30;

/// `msgs_state_info` status bytes.
mod state {
    pub const UNKNOWN: u8 = 1;
    pub const NOT_RECEIVED: u8 = 2;
    pub const NOT_RECEIVED_TOO_HIGH: u8 = 3;
    pub const RECEIVED: u8 = 4;
    pub const ACKED: u8 = 8;
}

impl Session {
    /// Checks the plaintext header, then processes the body. Nothing changes
    /// unless every check passes.
    pub(super) fn handle_plaintext(
        &mut self,
        now: Instant,
        plain: &[u8],
    ) -> Result<(), InboundError> {
        let mut r = Reader::new(plain);
        let _salt = r.read_i64()?;
        if r.read_i64()? != self.session_id {
            return Err(InboundError::WrongSessionId);
        }
        let msg_id = r.read_i64()?;
        let seqno = r.read_i32()?;
        let _len = r.read_i32()?;
        let body = r.read_rest();
        if !self.synced {
            // The packet passed msg_key: its msg_id carries the server's
            // clock, which is all a restored session lacks.
            self.msg_ids.correct_from_server(now, msg_id);
            self.synced = true;
        }
        // The server's time, read once for every msg_id of the packet.
        let server_now = self.synced.then(|| self.msg_ids.server_secs(now));
        if let Err(e) = self.check_msg_id(server_now, msg_id) {
            if e == MsgIdError::Duplicate && seqno & 1 == 1 {
                // Authentic and seen before: the server re-sends what it
                // thinks we did not get. Ack it again so it stops.
                self.ack_later(now, msg_id);
            }
            return Err(e.into());
        }
        // A container is checked whole before any of it takes effect. Its
        // messages may repeat ones received before (the server re-sends
        // what was not acknowledged): those are skipped, not fatal.
        let container = if first_id(body) == Some(MSG_CONTAINER_ID) {
            let c = Container::parse(body)?;
            for m in c.iter() {
                match self.check_msg_id(server_now, m.msg_id) {
                    Ok(()) | Err(MsgIdError::Duplicate | MsgIdError::TooOld) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Some(c)
        } else {
            None
        };
        self.replay.insert(msg_id);
        self.max_server_msg_id = self.max_server_msg_id.max(msg_id);
        match container {
            Some(c) => {
                for m in c.iter() {
                    if self.replay.check(m.msg_id).is_err() {
                        if m.seqno & 1 == 1 {
                            self.ack_later(now, m.msg_id);
                        }
                        continue;
                    }
                    self.replay.insert(m.msg_id);
                    self.max_server_msg_id = self.max_server_msg_id.max(m.msg_id);
                    self.handle_message(now, m.msg_id, m.seqno, m.body);
                }
            }
            None => self.handle_message(now, msg_id, seqno, body),
        }
        Ok(())
    }

    /// `server_now` is the server's time when the time window applies.
    fn check_msg_id(&self, server_now: Option<i64>, msg_id: i64) -> Result<(), MsgIdError> {
        if msg_id & 1 == 0 {
            return Err(MsgIdError::Even);
        }
        if let Some(server_now) = server_now {
            let skew_secs = msg_id_secs(msg_id) - server_now;
            if !(-WINDOW_PAST_SECS..=WINDOW_FUTURE_SECS).contains(&skew_secs) {
                return Err(MsgIdError::OutOfWindow { skew_secs });
            }
        }
        self.replay.check(msg_id)
    }

    fn ack_later(&mut self, now: Instant, msg_id: i64) {
        self.pending_acks.push(msg_id);
        if self.ack_deadline.is_none() {
            self.ack_deadline = Some(now + self.config.ack_delay);
        }
    }

    /// One message (top level or from a container). Malformed service
    /// messages are ignored: the rest of the packet still counts.
    fn handle_message(&mut self, now: Instant, msg_id: i64, seqno: i32, body: &[u8]) {
        if seqno & 1 == 1 {
            self.ack_later(now, msg_id);
        }
        self.dispatch(now, msg_id, body, 0);
    }

    fn dispatch(&mut self, now: Instant, msg_id: i64, body: &[u8], depth: u8) {
        let Some(id) = first_id(body) else { return };
        match id {
            RPC_RESULT_ID => {
                if let Ok(r) = RpcResult::parse(body) {
                    self.on_rpc_result(r.req_msg_id, r.result);
                }
            }
            GZIP_PACKED_ID if depth == 0 => {
                if let Ok(inner) = unpack_gzip(body, self.config.inflate_cap) {
                    self.dispatch(now, msg_id, &inner, depth + 1);
                }
            }
            MSG_COPY_ID if depth == 0 => {
                if let Ok(m) = parse_msg_copy(body) {
                    self.dispatch(now, msg_id, m.body, depth + 1);
                }
            }
            types::MsgsAck::CONSTRUCTOR_ID => {
                if let Ok(ack) = types::MsgsAck::from_bytes(body) {
                    for id in ack.msg_ids {
                        self.on_ack(id);
                    }
                }
            }
            types::BadMsgNotification::CONSTRUCTOR_ID | types::BadServerSalt::CONSTRUCTOR_ID => {
                if let Ok(n) = enums::BadMsgNotification::from_bytes(body) {
                    self.on_bad_msg(now, msg_id, n);
                }
            }
            types::NewSessionCreated::CONSTRUCTOR_ID => {
                if let Ok(n) = types::NewSessionCreated::from_bytes(body) {
                    self.on_new_session(n);
                }
            }
            types::Pong::CONSTRUCTOR_ID => {
                if let Ok(p) = types::Pong::from_bytes(body) {
                    self.on_pong(p, body);
                }
            }
            types::FutureSalts::CONSTRUCTOR_ID => {
                if let Ok(f) = types::FutureSalts::from_bytes(body) {
                    self.on_future_salts(now, f);
                }
            }
            types::MsgsStateReq::CONSTRUCTOR_ID => {
                if let Ok(q) = types::MsgsStateReq::from_bytes(body) {
                    self.answer_state_req(msg_id, &q.msg_ids);
                }
            }
            types::MsgsStateInfo::CONSTRUCTOR_ID => {
                if let Ok(i) = types::MsgsStateInfo::from_bytes(body) {
                    self.on_state_info(i);
                }
            }
            types::MsgsAllInfo::CONSTRUCTOR_ID => {
                if let Ok(i) = types::MsgsAllInfo::from_bytes(body) {
                    self.apply_states(&i.msg_ids, &i.info);
                }
            }
            types::MsgDetailedInfo::CONSTRUCTOR_ID | types::MsgNewDetailedInfo::CONSTRUCTOR_ID => {
                if let Ok(i) = enums::MsgDetailedInfo::from_bytes(body) {
                    self.on_detailed_info(now, i);
                }
            }
            types::MsgResendReq::CONSTRUCTOR_ID => {
                if let Ok(q) = types::MsgResendReq::from_bytes(body) {
                    self.on_resend_req(&q.msg_ids);
                }
            }
            types::DestroySessionOk::CONSTRUCTOR_ID | types::DestroySessionNone::CONSTRUCTOR_ID => {
                if let Ok(r) = enums::DestroySessionRes::from_bytes(body) {
                    self.on_destroy_session(r);
                }
            }
            // Server-to-client only makes sense the other way round: ignore.
            types::MsgResendAnsReq::CONSTRUCTOR_ID => {}
            _ => self.events.push_back(SessionEvent::Update {
                body: body.to_vec(),
            }),
        }
    }

    fn on_rpc_result(&mut self, req_msg_id: i64, result: &[u8]) {
        let Some(sent) = self.take_sent(req_msg_id) else {
            // An answer we no longer wait for (cancelled, or a duplicate
            // after a resend): acknowledged above, otherwise ignored.
            return;
        };
        let inflated;
        let mut result = result;
        if first_id(result) == Some(GZIP_PACKED_ID) {
            match unpack_gzip(result, self.config.inflate_cap) {
                Ok(v) => {
                    inflated = v;
                    result = &inflated;
                }
                Err(_) => {
                    // A corrupt answer: take the request back as not done,
                    // asking the server to send the answer again.
                    self.sent.insert(
                        req_msg_id,
                        Sent {
                            container: None,
                            ..sent
                        },
                    );
                    self.ask_resend_answers(vec![req_msg_id]);
                    return;
                }
            }
        }
        let outcome = if first_id(result) == Some(types::RpcError::CONSTRUCTOR_ID) {
            match types::RpcError::from_bytes(result) {
                Ok(e) => Err(RpcError {
                    code: e.error_code,
                    message: e.error_message,
                }),
                Err(_) => Ok(result.to_vec()),
            }
        } else {
            Ok(result.to_vec())
        };
        match sent.kind {
            Kind::Rpc(req) | Kind::Bind(req, _) => self.events.push_back(SessionEvent::Result {
                req,
                result: outcome,
                maybe_repeated: sent.maybe_repeated,
            }),
            Kind::FutureSalts => {
                self.salts_requested = false;
                if let Ok(f) = outcome.and_then(|b| {
                    types::FutureSalts::from_bytes(&b).map_err(|_| RpcError {
                        code: 0,
                        message: String::new(),
                    })
                }) {
                    self.store_salts(f);
                }
            }
            Kind::DestroySession(_) => {
                if let Ok(Ok(r)) = outcome.map(|b| enums::DestroySessionRes::from_bytes(&b)) {
                    self.on_destroy_session(r);
                }
            }
            Kind::Ping(_) | Kind::StateReq(_) | Kind::Fire => {}
        }
    }

    /// The server named the salt to use: the future salts we hold are
    /// stale (it rotated them), so they are dropped and fetched again.
    fn set_salt_from_server(&mut self, salt: i64) {
        self.salt = salt;
        self.future_salts.clear();
    }

    fn ask_resend_answers(&mut self, msg_ids: Vec<i64>) {
        let body = types::MsgResendAnsReq { msg_ids }.to_bytes();
        self.queue_fire(body, true);
    }

    fn on_ack(&mut self, msg_id: i64) {
        match self.containers.get(&msg_id) {
            Some(inner) => {
                for &id in inner {
                    ack_sent(&mut self.sent, &mut self.events, id);
                }
            }
            None => ack_sent(&mut self.sent, &mut self.events, msg_id),
        }
    }

    fn on_bad_msg(&mut self, now: Instant, notice_msg_id: i64, n: enums::BadMsgNotification) {
        let (bad_msg_id, code) = match &n {
            enums::BadMsgNotification::BadMsg(b) => (b.bad_msg_id, b.error_code),
            enums::BadMsgNotification::BadServerSalt(b) => {
                self.set_salt_from_server(b.new_server_salt);
                (b.bad_msg_id, b.error_code)
            }
        };
        if !self.sent.contains_key(&bad_msg_id) && !self.containers.contains_key(&bad_msg_id) {
            return; // not ours, or already handled
        }
        match code {
            // msg_id too low / too high: take the server's time from this
            // notification's own msg_id, then resend with fresh ids.
            16 | 17 => {
                self.msg_ids.correct_from_server(now, notice_msg_id);
                self.requeue(&[bad_msg_id]);
            }
            // seq_no too low: move the counter past what the server saw.
            32 => {
                self.seq.bump(16);
                self.requeue(&[bad_msg_id]);
            }
            // Bad container (64) or a container id seen before (19): resend
            // the messages; the next packet builds a fresh container.
            // 18 (id not divisible by 4), 20 (too old to verify), 33 (seq_no
            // too high), 34/35 (seq_no parity), 48 (salt, handled above):
            // the message was ignored, so a resend with a new id is safe.
            18 | 19 | 20 | 33 | 34 | 35 | 48 | 64 => self.requeue(&[bad_msg_id]),
            _ => self.fail_with_code(bad_msg_id, code),
        }
    }

    /// A bad_msg_notification code with no defined reaction: fail the
    /// requests rather than guess.
    fn fail_with_code(&mut self, msg_id: i64, code: i32) {
        let ids = match self.containers.remove(&msg_id) {
            Some(inner) => inner.into(),
            None => vec![msg_id],
        };
        for id in ids {
            if let Some(Sent {
                kind: Kind::Rpc(req),
                ..
            }) = self.take_sent(id)
            {
                self.events.push_back(SessionEvent::Failed { req, code });
            }
        }
    }

    fn on_new_session(&mut self, n: types::NewSessionCreated) {
        self.set_salt_from_server(n.server_salt);
        // What the old session had not answered, the new one never will:
        // resend, flagged as possibly run already.
        let mut older: Vec<i64> = self
            .sent
            .keys()
            .copied()
            .filter(|&id| id < n.first_msg_id)
            .collect();
        older.sort_unstable();
        for id in &older {
            if let Some(s) = self.sent.get_mut(id) {
                s.maybe_repeated = matches!(s.kind, Kind::Rpc(_));
            }
        }
        let resent = older
            .iter()
            .filter(|id| matches!(self.sent.get(id).map(|s| &s.kind), Some(Kind::Rpc(_))))
            .count();
        self.requeue(&older);
        self.events.push_back(SessionEvent::NewSession {
            first_msg_id: n.first_msg_id,
            resent,
        });
    }

    /// A pong answers either our keepalive ping or a `ping` the caller
    /// sent as a request, whose answer it then is.
    fn on_pong(&mut self, p: types::Pong, body: &[u8]) {
        let Some(s) = self.sent.get(&p.msg_id) else {
            return;
        };
        match s.kind {
            Kind::Ping(id) if id == p.ping_id => {
                self.take_sent(p.msg_id);
                self.events
                    .push_back(SessionEvent::Pong { ping_id: p.ping_id });
            }
            Kind::Rpc(req) => {
                let maybe_repeated = s.maybe_repeated;
                self.take_sent(p.msg_id);
                self.events.push_back(SessionEvent::Result {
                    req,
                    result: Ok(body.to_vec()),
                    maybe_repeated,
                });
            }
            _ => {}
        }
    }

    fn on_future_salts(&mut self, now: Instant, f: types::FutureSalts) {
        // Only a get_future_salts is answered by this: the id of any other
        // message must not take that message out of the session.
        if self
            .sent
            .get(&f.req_msg_id)
            .is_some_and(|s| s.kind == Kind::FutureSalts)
        {
            self.take_sent(f.req_msg_id);
            self.salts_requested = false;
        }
        self.store_salts(f);
        let _ = now;
    }

    fn store_salts(&mut self, f: types::FutureSalts) {
        let mut salts = f.salts;
        salts.sort_by_key(|s| s.valid_since);
        // Bounded: the server sends at most 64.
        salts.truncate(64);
        self.future_salts = salts.into();
    }

    /// Answers the server's `msgs_state_req` about its messages to us.
    fn answer_state_req(&mut self, req_msg_id: i64, msg_ids: &[i64]) {
        let pending: std::collections::HashSet<i64> = self.pending_acks.iter().copied().collect();
        let info = msg_ids
            .iter()
            .map(|&id| {
                if self.replay.check(id) == Err(MsgIdError::Duplicate) {
                    if pending.contains(&id) {
                        state::RECEIVED
                    } else {
                        state::RECEIVED | state::ACKED
                    }
                } else if id > self.max_server_msg_id {
                    state::NOT_RECEIVED_TOO_HIGH
                } else if self.replay.check(id) == Err(MsgIdError::TooOld) {
                    state::UNKNOWN
                } else {
                    state::NOT_RECEIVED
                }
            })
            .collect();
        let body = types::MsgsStateInfo { req_msg_id, info }.to_bytes();
        self.queue_fire(body, true);
    }

    fn on_state_info(&mut self, i: types::MsgsStateInfo) {
        // As for future_salts: only a msgs_state_req is answered by this.
        let is_state_req = |s: &Sent| matches!(s.kind, Kind::StateReq(_));
        if !self.sent.get(&i.req_msg_id).is_some_and(is_state_req) {
            return;
        }
        if let Some(Sent {
            kind: Kind::StateReq(asked),
            ..
        }) = self.take_sent(i.req_msg_id)
        {
            self.apply_states(&asked, &i.info);
        }
    }

    /// Reacts to the server's view of our messages: resend what it never
    /// received; what it received is answered in due course.
    fn apply_states(&mut self, msg_ids: &[i64], info: &[u8]) {
        let mut resend = Vec::new();
        for (&id, &status) in msg_ids.iter().zip(info) {
            let Some(s) = self.sent.get_mut(&id) else {
                continue;
            };
            match status & 7 {
                state::NOT_RECEIVED | state::NOT_RECEIVED_TOO_HIGH => resend.push(id),
                state::RECEIVED => {
                    s.uncertain = false;
                    if !s.acked {
                        s.acked = true;
                        if let Kind::Rpc(req) = s.kind {
                            self.events.push_back(SessionEvent::Acked { req });
                        }
                    }
                }
                // 1: the server knows nothing of it (it may have forgotten):
                // it cannot be confirmed either way, so it is resent marked
                // as possibly repeated.
                _ => {
                    s.maybe_repeated = matches!(s.kind, Kind::Rpc(_));
                    resend.push(id);
                }
            }
        }
        self.requeue(&resend);
    }

    fn on_detailed_info(&mut self, now: Instant, i: enums::MsgDetailedInfo) {
        let answer_msg_id = match i {
            enums::MsgDetailedInfo::Known(k) => {
                self.on_ack(k.msg_id);
                k.answer_msg_id
            }
            enums::MsgDetailedInfo::New(n) => n.answer_msg_id,
        };
        if self.replay.check(answer_msg_id) == Err(MsgIdError::Duplicate) {
            self.ack_later(now, answer_msg_id);
        } else {
            let body = types::MsgResendReq {
                msg_ids: vec![answer_msg_id],
            }
            .to_bytes();
            self.queue_fire(body, true);
        }
    }

    /// The server asks for messages again: resend those we still hold.
    fn on_resend_req(&mut self, msg_ids: &[i64]) {
        let held: Vec<i64> = msg_ids
            .iter()
            .copied()
            .filter(|id| self.sent.contains_key(id))
            .collect();
        self.requeue(&held);
    }

    fn on_destroy_session(&mut self, r: enums::DestroySessionRes) {
        let (session_id, existed) = match r {
            enums::DestroySessionRes::Ok(o) => (o.session_id, true),
            enums::DestroySessionRes::None(n) => (n.session_id, false),
        };
        self.take_sent_of(&Kind::DestroySession(session_id));
        self.events.push_back(SessionEvent::SessionDestroyed {
            session_id,
            existed,
        });
    }
}

/// Marks one sent message acknowledged (reporting it once if a request).
fn ack_sent(sent: &mut MsgIdSlabMap<Sent>, events: &mut VecDeque<SessionEvent>, id: i64) {
    if let Some(s) = sent.get_mut(&id) {
        if !s.acked {
            s.acked = true;
            s.uncertain = false;
            if let Kind::Rpc(req) = s.kind {
                events.push_back(SessionEvent::Acked { req });
            }
        }
    }
}

fn first_id(body: &[u8]) -> Option<u32> {
    Reader::new(body).read_u32().ok()
}
