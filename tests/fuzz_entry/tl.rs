//! `tl_objects` and `tl_messages`: the TL readers on arbitrary bytes, with
//! the round-trip property wherever a parse succeeds.

use std::fmt::Debug;

use mtsender::tl::message::{
    inflate, parse_msg_copy, unpack_gzip, write_gzip_packed, Container, ContainerWriter,
    PlainMessage, RpcResult, MAX_CONTAINER_MESSAGES, MSG_CONTAINER_ID, MSG_COPY_ID,
};
use mtsender::tl::{enums, Deserialize, Object, RawTail, Reader, Serialize, VECTOR_ID};

use super::cursor::Cursor;

/// Parses a `T` from the front of `data`. When that works, its TL form must
/// parse again to a value with the same TL form, and `from_bytes` must agree
/// on whether `data` held exactly one value.
fn round_trip<T>(data: &[u8]) -> Option<T>
where
    T: for<'a> Deserialize<'a> + Serialize + Debug,
{
    let mut r = Reader::new(data);
    let parsed = T::deserialize(&mut r);
    let whole = parsed.is_ok() && r.remaining() == 0;
    assert_eq!(
        T::from_bytes(data).is_ok(),
        whole,
        "from_bytes disagrees with deserialize + finish"
    );
    let value = parsed.ok()?;
    assert!(r.pos() <= data.len());
    let once = value.to_bytes();
    let again = T::from_bytes(&once)
        .unwrap_or_else(|e| panic!("{value:?} serializes to bytes that do not parse: {e}"));
    assert_eq!(again.to_bytes(), once, "{value:?} does not round-trip");
    Some(value)
}

/// `Object` (every boxed constructor), every multi-constructor enum, a few
/// vectors and primitives, all on the same bytes; then a script of
/// `Reader` calls.
///
/// Layout: the bytes to parse. The last byte `n` also splits off a Reader
/// script: the `n % 32` bytes before it drive `Reader` over the rest.
pub fn tl_objects(data: &[u8]) {
    if let Some(obj) = round_trip::<Object>(data) {
        let id = Reader::new(data).read_u32().expect("an object has an id");
        assert_eq!(obj.constructor_id(), id);
        assert!(Object::is_known(id));
    }
    round_trip::<enums::PQInnerData>(data);
    round_trip::<enums::ServerDhParams>(data);
    round_trip::<enums::SetClientDhParamsAnswer>(data);
    round_trip::<enums::RpcDropAnswer>(data);
    round_trip::<enums::DestroySessionRes>(data);
    round_trip::<enums::BadMsgNotification>(data);
    round_trip::<enums::MsgResendReq>(data);
    round_trip::<enums::MsgDetailedInfo>(data);
    round_trip::<enums::DestroyAuthKeyRes>(data);
    round_trip::<Vec<i64>>(data);
    round_trip::<Vec<Vec<u8>>>(data);
    round_trip::<Vec<Object>>(data);
    round_trip::<Vec<u8>>(data);
    round_trip::<String>(data);
    round_trip::<bool>(data);
    round_trip::<RawTail>(data);

    if let Some((&n, head)) = data.split_last() {
        let n = usize::from(n % 32).min(head.len());
        let (script, buf) = head.split_at(n);
        reader_script(script, buf);
    }
}

/// Each script byte is a call (low 4 bits) with an argument (high 4 bits);
/// after every call the cursor must be consistent, and a fixed-size read
/// that fails must not have moved it.
fn reader_script(script: &[u8], buf: &[u8]) {
    let mut r = Reader::new(buf);
    for &b in script {
        let (op, arg) = (b & 15, usize::from(b >> 4));
        let before = r.pos();
        let moved = |r: &Reader| r.pos() - before;
        let fixed = |r: &Reader, ok: bool, n: usize| {
            assert_eq!(r.pos() - before, if ok { n } else { 0 }, "op {op}");
        };
        match op {
            0 => {
                let ok = r.read_u32().is_ok();
                fixed(&r, ok, 4)
            }
            1 => {
                let ok = r.read_i32().is_ok();
                fixed(&r, ok, 4)
            }
            2 => {
                let ok = r.read_i64().is_ok();
                fixed(&r, ok, 8)
            }
            3 => {
                let ok = r.read_f64().is_ok();
                fixed(&r, ok, 8)
            }
            4 => {
                let peeked = r.peek_u32();
                assert_eq!(moved(&r), 0);
                assert_eq!(peeked.is_ok(), r.remaining() >= 4);
            }
            5 => {
                if let Ok(d) = r.read_bytes() {
                    let used = moved(&r);
                    let header = if buf[before] == 254 { 4 } else { 1 };
                    assert_eq!(used % 4, 0, "bytes not padded to 4");
                    assert!(used >= header + d.len() && used < header + d.len() + 4);
                    assert_eq!(&buf[before + header..before + header + d.len()], d);
                }
            }
            6 => {
                let n = arg * 3;
                let ok = r.read_raw(n).is_ok();
                fixed(&r, ok, n)
            }
            7 => {
                let ok = r.read_array::<16>().is_ok();
                fixed(&r, ok, 16)
            }
            8 => {
                let min = arg >> 1;
                if let Ok(count) = r.read_vector_len(arg & 1 == 1, min) {
                    assert!(count.saturating_mul(min.max(1)) <= r.remaining());
                }
            }
            9 => {
                // A wrong id is consumed; a short input is not.
                let ok = r.expect_id(VECTOR_ID).is_ok();
                let whole = buf.len() - before >= 4;
                assert_eq!(moved(&r), if whole { 4 } else { 0 });
                assert!(!ok || whole);
            }
            10 => {
                assert_eq!(r.finish().is_ok(), r.remaining() == 0);
                assert_eq!(moved(&r), 0);
            }
            11 => {
                let rest = r.read_rest();
                assert_eq!(rest, &buf[before..]);
            }
            12 => {
                let _ = Vec::<i64>::deserialize(&mut r);
            }
            13 => {
                let _ = String::deserialize(&mut r);
            }
            14 => {
                let _ = bool::deserialize(&mut r);
            }
            _ => {
                let _ = Object::deserialize(&mut r);
            }
        }
        assert!(r.pos() >= before, "the cursor went back");
        assert_eq!(r.pos() + r.remaining(), buf.len());
        assert_eq!(r.rest(), &buf[r.pos()..]);
    }
}

/// Inflate cap for the gzip checks.
const GZIP_CAP: usize = 1 << 20;

/// The hand-parsed forms on arbitrary bytes: each one that parses must
/// write back to exactly the bytes it came from.
///
/// Layout: the bytes to parse (all parsers see all of them).
pub fn tl_messages(data: &[u8]) {
    if let Ok(r) = RpcResult::parse(data) {
        let mut out = Vec::new();
        RpcResult::write(&mut out, r.req_msg_id, r.result);
        assert_eq!(out, data, "rpc_result does not write back");
    }

    if let Ok(c) = Container::parse(data) {
        assert!(c.len() <= MAX_CONTAINER_MESSAGES);
        assert_eq!(c.is_empty(), c.iter().next().is_none());
        let mut out = Vec::new();
        let mut w = ContainerWriter::begin(&mut out);
        let mut n = 0;
        for m in c.iter() {
            let first = Reader::new(m.body).read_u32().ok();
            assert_ne!(
                first,
                Some(MSG_CONTAINER_ID),
                "a nested container got through"
            );
            assert_eq!(m.body.len() % 4, 0);
            w.push(&mut out, m.msg_id, m.seqno, m.body);
            n += 1;
        }
        assert_eq!(
            n,
            c.len(),
            "iter() yields fewer messages than parse counted"
        );
        w.finish(&mut out);
        assert_eq!(out, data, "a container does not write back");
    }

    if let Ok(m) = parse_msg_copy(data) {
        let mut out = MSG_COPY_ID.to_le_bytes().to_vec();
        m.write(&mut out);
        assert_eq!(out, data, "msg_copy does not write back");
    }

    match unpack_gzip(data, GZIP_CAP) {
        Ok(inner) => {
            assert!(inner.len() <= GZIP_CAP);
            // Packing again must give the same bytes back (kept small: deflate
            // is slow).
            if inner.len() <= 64 << 10 {
                let mut packed = Vec::new();
                write_gzip_packed(&mut packed, &inner);
                assert_eq!(unpack_gzip(&packed, GZIP_CAP).as_deref(), Ok(&inner[..]));
            }
        }
        Err(mtsender::tl::Error::GzipTooLarge { cap }) => assert_eq!(cap, GZIP_CAP),
        Err(_) => {}
    }
    // A small cap on the raw bytes too: the limit must hold at any size.
    let mut c = Cursor::new(data);
    let cap = usize::from(c.u16());
    if let Ok(out) = inflate(c.rest(), cap) {
        assert!(out.len() <= cap, "inflate past its cap");
    }

    if let Ok(p) = PlainMessage::parse(data) {
        let mut out = Vec::new();
        PlainMessage::write(&mut out, p.msg_id, p.body);
        assert_eq!(out, data, "a plain message does not write back");
    }
}
