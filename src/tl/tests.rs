use proptest::prelude::*;

use super::message::*;
use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn bytes_short_and_long_forms() {
    for (len, header, total) in [
        (0usize, 1usize, 4usize),
        (1, 1, 4),
        (3, 1, 4),
        (4, 1, 8),
        (253, 1, 256),
        (254, 4, 260),
        (255, 4, 260),
        (256, 4, 260),
        (257, 4, 264),
        (70_000, 4, 70_004),
    ] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut out = Vec::new();
        write_bytes(&mut out, &data);
        assert_eq!(out.len(), total, "len {len}");
        assert_eq!(bytes_len(len), total);
        if header == 1 {
            assert_eq!(out[0] as usize, len);
        } else {
            assert_eq!(out[0], 254);
            assert_eq!(
                u32::from_le_bytes([out[1], out[2], out[3], 0]) as usize,
                len
            );
        }
        assert_eq!(&out[header..header + len], &data[..]);
        assert!(out[header + len..].iter().all(|&b| b == 0), "zero padding");
        let mut r = Reader::new(&out);
        assert_eq!(r.read_bytes().unwrap(), &data[..]);
        r.finish().unwrap();
    }
}

#[test]
fn primitives_known_answers() {
    assert_eq!(0x1234_5678_i32.to_bytes(), [0x78, 0x56, 0x34, 0x12]);
    assert_eq!(
        (-2_i64).to_bytes(),
        [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
    );
    assert_eq!(1.5_f64.to_bytes(), 1.5_f64.to_le_bytes());
    assert_eq!(true.to_bytes(), hex("b5757299"));
    assert_eq!(false.to_bytes(), hex("379779bc"));
    assert_eq!(
        vec![1_i64, 2].to_bytes(),
        hex("15c4b51c0200000001000000000000000200000000000000")
    );
    assert_eq!(bool::from_bytes(&hex("b5757299")), Ok(true));
    assert!(matches!(
        bool::from_bytes(&hex("00000000")),
        Err(Error::UnexpectedConstructor { got: 0, at: 0 })
    ));
    let mut r = Reader::new(&[1, 2, 3]);
    assert_eq!(r.read_i32(), Err(Error::UnexpectedEof { needed: 1, at: 0 }));
    // A failed read consumes nothing.
    assert_eq!(r.pos(), 0);
    let int128: [u8; 16] = core::array::from_fn(|i| i as u8);
    assert_eq!(int128.to_bytes(), int128);
}

#[test]
fn bytes_hostile_prefixes() {
    assert_eq!(
        Reader::new(&[255, 0, 0, 0]).read_bytes(),
        Err(Error::BadBytesPrefix { at: 0 })
    );
    // Claims 200 bytes, has 3.
    assert!(matches!(
        Reader::new(&[200, 1, 2, 3]).read_bytes(),
        Err(Error::UnexpectedEof { .. })
    ));
    // Long form claiming 16 MiB - 1, with nothing behind it.
    assert!(matches!(
        Reader::new(&[254, 255, 255, 255]).read_bytes(),
        Err(Error::UnexpectedEof { .. })
    ));
    // Data present but padding missing.
    assert!(matches!(
        Reader::new(&[2, 9, 9]).read_bytes(),
        Err(Error::UnexpectedEof { .. })
    ));
}

#[test]
fn vector_counts_are_checked_before_allocation() {
    let mut bad = hex("15c4b51c");
    bad.extend_from_slice(&i32::MAX.to_le_bytes());
    bad.extend_from_slice(&[0; 8]);
    assert!(matches!(
        Vec::<i64>::from_bytes(&bad),
        Err(Error::BadVectorCount {
            count: 2147483647,
            remaining: 8
        })
    ));
    let mut neg = hex("15c4b51c");
    neg.extend_from_slice(&(-1i32).to_le_bytes());
    assert!(matches!(
        Vec::<i64>::from_bytes(&neg),
        Err(Error::BadVectorCount { count: -1, .. })
    ));
    // A vector with a wrong constructor.
    assert!(matches!(
        Vec::<i64>::from_bytes(&hex("0000000000000000")),
        Err(Error::UnexpectedConstructor { .. })
    ));
    // Zero elements is fine.
    assert_eq!(Vec::<i64>::from_bytes(&hex("15c4b51c00000000")), Ok(vec![]));
}

/// Every constructor id written in the schema file is implemented (the hand
/// parsed ones in `message`, the others in [`Object`]), with the same id.
#[test]
fn every_schema_constructor_is_implemented() {
    let schema = include_str!("../../tests/vectors/mtproto.tl");
    let hand = [RPC_RESULT_ID, MSG_CONTAINER_ID, MSG_COPY_ID, VECTOR_ID];
    let mut seen = 0;
    for line in schema.lines() {
        let line = line.trim_start_matches("//").trim();
        let Some(name_id) = line.split_whitespace().next() else {
            continue;
        };
        let Some((name, id)) = name_id.split_once('#') else {
            continue;
        };
        if name.is_empty() || id.len() != 8 {
            continue;
        }
        let id = u32::from_str_radix(id, 16).unwrap();
        assert!(
            Object::is_known(id) || hand.contains(&id),
            "{name}#{id:08x} is not implemented"
        );
        seen += 1;
    }
    assert_eq!(seen, super::object::ALL_IDS.len() + hand.len() - 1);
}

#[test]
fn known_answer_payloads_from_the_auth_key_sample() {
    // req_pq_multi (step 1): body after the 20-byte plain header.
    let body = hex("F18E7EBE406709F612FADFBEC3F0289D0AA67EEF");
    let req = functions::ReqPqMulti::from_bytes(&body).unwrap();
    assert_eq!(req.nonce.to_vec(), hex("406709F612FADFBEC3F0289D0AA67EEF"));
    assert_eq!(req.to_bytes(), body);
}

/// Serialize, read back, serialize again: the bytes agree and the reader
/// consumed all of them. (Byte equality, so NaN doubles compare too.)
fn round_trip<T>(value: &T) -> std::result::Result<(), TestCaseError>
where
    T: Serialize + for<'a> Deserialize<'a> + std::fmt::Debug,
{
    let bytes = value.to_bytes();
    let back = T::from_bytes(&bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(back.to_bytes(), bytes);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_object_round_trips(obj in any::<Object>()) {
        round_trip(&obj)?;
        // The id dispatched on is the one written.
        prop_assert_eq!(&obj.to_bytes()[..4], &obj.constructor_id().to_le_bytes());
    }

    #[test]
    fn every_truncation_is_an_error(obj in any::<Object>(), cut in any::<prop::sample::Index>()) {
        let bytes = obj.to_bytes();
        let cut = cut.index(bytes.len());
        // A truncated value never panics; it is an error unless the cut lands
        // on a RawTail (whose shorter form is still a value).
        let _ = Object::from_bytes(&bytes[..cut]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Object::from_bytes(&bytes);
        let _ = Container::parse(&bytes);
        let _ = RpcResult::parse(&bytes);
        let _ = parse_msg_copy(&bytes);
        let _ = unpack_gzip(&bytes, 1 << 16);
        let mut r = Reader::new(&bytes);
        let _ = r.read_bytes();
        let _ = Vec::<Vec<u8>>::from_bytes(&bytes);
    }

    #[test]
    fn enums_round_trip(
        a in any::<enums::PQInnerData>(),
        b in any::<enums::ServerDhParams>(),
        c in any::<enums::SetClientDhParamsAnswer>(),
        d in any::<enums::RpcDropAnswer>(),
        e in any::<enums::DestroySessionRes>(),
        f in any::<enums::BadMsgNotification>(),
        g in any::<enums::MsgResendReq>(),
        h in any::<enums::MsgDetailedInfo>(),
        i in any::<enums::DestroyAuthKeyRes>(),
    ) {
        round_trip(&a)?; round_trip(&b)?; round_trip(&c)?;
        round_trip(&d)?; round_trip(&e)?; round_trip(&f)?;
        round_trip(&g)?; round_trip(&h)?; round_trip(&i)?;
    }

    #[test]
    fn bare_rsa_public_key_round_trips(n in proptest::collection::vec(any::<u8>(), 0..300), e in proptest::collection::vec(any::<u8>(), 0..8)) {
        round_trip(&types::RsaPublicKey { n, e })?;
    }

    #[test]
    fn containers_round_trip(msgs in proptest::collection::vec(
        (any::<i64>(), any::<i32>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..50)
    ) {
        let mut out = Vec::new();
        let mut w = ContainerWriter::begin(&mut out);
        let mut bodies = Vec::new();
        for (i, (id, seq, body)) in msgs.iter().enumerate() {
            let mut body = body.clone();
            body.truncate(body.len() / 4 * 4);
            // Keep the first word from being a container id.
            if body.len() >= 4 { body[0] = 0; }
            if i % 2 == 0 {
                w.push(&mut out, *id, *seq, &body);
            } else {
                w.push_with(&mut out, *id, *seq, |o| o.extend_from_slice(&body));
            }
            bodies.push((*id, *seq, body));
        }
        prop_assert_eq!(w.count(), msgs.len());
        w.finish(&mut out);
        let c = Container::parse(&out).unwrap();
        prop_assert_eq!(c.len(), msgs.len());
        let got: Vec<_> = c.iter().map(|m| (m.msg_id, m.seqno, m.body.to_vec())).collect();
        prop_assert_eq!(got, bodies);
    }

    #[test]
    fn gzip_round_trips(data in proptest::collection::vec(any::<u8>(), 0..5000)) {
        let mut body = Vec::new();
        write_gzip_packed(&mut body, &data);
        prop_assert_eq!(unpack_gzip(&body, data.len()).unwrap(), data.clone());
        if !data.is_empty() {
            prop_assert_eq!(unpack_gzip(&body, data.len() - 1), Err(Error::GzipTooLarge { cap: data.len() - 1 }));
        }
    }
}

#[test]
fn rpc_result_parse_and_write() {
    let mut out = Vec::new();
    RpcResult::write(
        &mut out,
        0x1122_3344_5566_7788,
        &hex("c57377340100000000000000"),
    );
    let r = RpcResult::parse(&out).unwrap();
    assert_eq!(r.req_msg_id, 0x1122_3344_5566_7788);
    assert_eq!(r.result, &hex("c57377340100000000000000")[..]);
    assert!(matches!(
        RpcResult::parse(&out[..10]),
        Err(Error::UnexpectedEof { .. })
    ));
    assert!(matches!(
        RpcResult::parse(&[0; 12]),
        Err(Error::UnexpectedConstructor { .. })
    ));
}

fn container_of(messages: &[(i64, i32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = ContainerWriter::begin(&mut out);
    for (id, seq, body) in messages {
        w.push(&mut out, *id, *seq, body);
    }
    w.finish(&mut out);
    out
}

#[test]
fn containers_hostile() {
    let ping = functions::Ping { ping_id: 1 }.to_bytes();

    // Nested container.
    let inner = container_of(&[(1, 1, ping.clone())]);
    let outer = container_of(&[(2, 3, inner.clone())]);
    assert_eq!(
        Container::parse(&outer).unwrap_err(),
        Error::NestedContainer
    );

    // msg_copy of a container.
    let mut copy = MSG_COPY_ID.to_le_bytes().to_vec();
    write_message(&mut copy, 5, 1, &inner);
    assert_eq!(parse_msg_copy(&copy).unwrap_err(), Error::NestedContainer);
    let mut copy = MSG_COPY_ID.to_le_bytes().to_vec();
    write_message(&mut copy, 5, 1, &ping);
    assert_eq!(parse_msg_copy(&copy).unwrap().body, &ping[..]);

    // 1024 messages are fine, 1025 are not.
    let many: Vec<_> = (0..1025).map(|i| (i as i64 * 4, 1, ping.clone())).collect();
    assert_eq!(
        Container::parse(&container_of(&many[..1024]))
            .unwrap()
            .len(),
        1024
    );
    assert_eq!(
        Container::parse(&container_of(&many)).unwrap_err(),
        Error::ContainerTooLarge {
            count: 1025,
            max: 1024
        }
    );

    // Count larger than the bytes present.
    let mut lying = container_of(&[(1, 1, ping.clone())]);
    lying[4..8].copy_from_slice(&1_000_000i32.to_le_bytes());
    assert!(matches!(
        Container::parse(&lying),
        Err(Error::BadVectorCount { .. })
    ));

    // Inner length past the end, negative, or not a multiple of 4.
    for bad_len in [ping.len() as i32 + 4, -4, 6, i32::MAX] {
        let mut c = container_of(&[(1, 1, ping.clone())]);
        c[8 + 12..8 + 16].copy_from_slice(&bad_len.to_le_bytes());
        assert!(
            matches!(Container::parse(&c), Err(Error::BadMessageLength { len, .. }) if len == bad_len),
            "len {bad_len}"
        );
    }

    // Trailing garbage after the last message.
    let mut c = container_of(&[(1, 1, ping.clone())]);
    c.extend_from_slice(&[0; 4]);
    assert_eq!(
        Container::parse(&c).unwrap_err(),
        Error::TrailingBytes { extra: 4 }
    );

    // An empty container is valid and empty.
    assert!(Container::parse(&container_of(&[])).unwrap().is_empty());
}

#[test]
fn gzip_bomb_is_capped() {
    // 64 MiB of zeros compresses to ~64 KiB.
    let zeros = vec![0u8; 64 << 20];
    let mut body = Vec::new();
    write_gzip_packed(&mut body, &zeros);
    assert!(body.len() < 128 << 10);
    assert_eq!(
        unpack_gzip(&body, 1 << 20),
        Err(Error::GzipTooLarge { cap: 1 << 20 })
    );
    // Corrupt stream.
    let mut broken = body.clone();
    let n = broken.len();
    broken[20..n - 8].iter_mut().for_each(|b| *b ^= 0x5a);
    assert!(matches!(
        unpack_gzip(&broken, 1 << 20),
        Err(Error::GzipCorrupt | Error::GzipTooLarge { .. })
    ));
    assert_eq!(inflate(b"not gzip at all", 100), Err(Error::GzipCorrupt));
}

#[test]
fn future_salts_are_bare_inside() {
    let fs = types::FutureSalts {
        req_msg_id: 7,
        now: 100,
        salts: vec![types::FutureSalt {
            valid_since: 1,
            valid_until: 2,
            salt: 3,
        }],
    };
    let bytes = fs.to_bytes();
    // id, req_msg_id, now, count, then one bare salt: no vector id, no salt id.
    assert_eq!(bytes.len(), 4 + 8 + 4 + 4 + 16);
    assert_eq!(&bytes[16..20], &1i32.to_le_bytes());
    assert_eq!(types::FutureSalts::from_bytes(&bytes).unwrap(), fs);
}

#[test]
fn init_connection_with_wrapped_query() {
    let ping = functions::Ping { ping_id: 9 }.to_bytes();
    let init = functions::InitConnection {
        api_id: 1,
        device_model: "d".into(),
        query: RawTail(ping.clone()),
        ..Default::default()
    };
    let layer = functions::InvokeWithLayer {
        layer: 200,
        query: RawTail(init.to_bytes()),
    };
    let bytes = layer.to_bytes();
    let back = functions::InvokeWithLayer::from_bytes(&bytes).unwrap();
    let init_back = functions::InitConnection::from_bytes(&back.query.0).unwrap();
    assert_eq!(init_back, init);
    assert_eq!(init_back.query.0, ping);
    // With a proxy the flags word has bit 0 set and the raw object is inline.
    let with_proxy = functions::InitConnection {
        proxy: Some(vec![1, 2, 3, 4]),
        ..init.clone()
    };
    let b = with_proxy.to_bytes();
    assert_eq!(&b[4..8], &1u32.to_le_bytes());
    assert!(functions::InitConnection::from_bytes(&b).is_err());
}
