//! Every scenario runs once at a small size and delivers everything, so
//! the runner cannot rot between benchmark runs.

use mtsender_bench::common::{self, Clocks};
use mtsender_bench::{ferogram, floor, grammers, ours, sim};

#[test]
fn small_messages_both_ways() {
    let clocks = Clocks::now();
    let n = 300;
    let mut a = ours::EncodeSmall::new(clocks, n);
    a.run();
    a.run();
    assert!(a.wire_bytes > n * 80);
    let mut g = grammers::EncodeSmall::new(n);
    g.run();
    assert!(g.wire_bytes > n * 80);
    let mut f = ferogram::EncodeSmall::new(n);
    f.run();
    assert!(f.wire_bytes > n * 80);

    for mode in [common::Reads::Stream, common::Reads::PerPacket] {
        let mut a = ours::DecodeSmall::new(clocks, n, mode);
        a.run();
        assert_eq!(a.delivered, n);
        a.run();
        assert_eq!(a.delivered, n);
        let mut g = grammers::DecodeSmall::new(clocks, n, mode);
        g.run();
        assert_eq!(g.delivered, n);
    }
}

#[test]
fn bulk_both_ways() {
    let clocks = Clocks::now();
    let len = 64 * 1024;
    let mut a = ours::BulkEncrypt::new(clocks, len);
    a.run();
    assert!(a.wire_bytes > len);
    let mut a = ours::BulkDecrypt::new(clocks, len);
    a.run();
    assert_eq!(a.delivered, len);
    a.run();
    assert_eq!(a.delivered, len);
    let mut f = ferogram::BulkDecrypt::new(clocks, len);
    f.run();
    assert_eq!(f.delivered, len);
    let mut g = grammers::BulkDecrypt::new(clocks, len).expect("64 KiB is under its cap");
    g.run();
    assert_eq!(g.delivered, len);
    floor::Floor::new(len, false).run();
    floor::Floor::new(len, true).run();
}

#[test]
fn sender_against_the_fake_dc() {
    let clocks = Clocks::now();
    let mut e = sim::E2e::new(clocks, 50, true);
    e.run();
    e.run();
    let p = sim::scale_point(clocks, 200, true);
    assert_eq!(p.n, 200);
}
