//! Criterion benches of scenarios 1–3, for development:
//! `cargo bench -p mtsender-bench`. The runner (`cargo run --release -p
//! mtsender-bench`) is what reports against the peers and the targets.
#![allow(clippy::disallowed_methods)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mtsender_bench::common::{self, Clocks};
use mtsender_bench::{ferogram, floor, grammers, ours};

fn encode_small(c: &mut Criterion) {
    let n = common::SMALL_COUNT;
    let clocks = Clocks::now();
    let mut g = c.benchmark_group("encode_small");
    g.throughput(Throughput::Elements(n as u64));
    let mut a = ours::EncodeSmall::new(clocks, n);
    g.bench_function("mtsender", |b| {
        b.iter_custom(|k| (0..k).map(|_| a.run()).sum())
    });
    let mut gr = grammers::EncodeSmall::new(n);
    g.bench_function("grammers", |b| {
        b.iter_custom(|k| (0..k).map(|_| gr.run()).sum())
    });
    let mut f = ferogram::EncodeSmall::new(n);
    g.bench_function("ferogram", |b| {
        b.iter_custom(|k| (0..k).map(|_| f.run()).sum())
    });
    g.finish();
}

fn decode_small(c: &mut Criterion) {
    let n = common::SMALL_COUNT;
    let clocks = Clocks::now();
    let mut g = c.benchmark_group("decode_small");
    g.throughput(Throughput::Elements(n as u64));
    let mut a = ours::DecodeSmall::new(clocks, n, common::Reads::Stream);
    g.bench_function("mtsender", |b| {
        b.iter_custom(|k| (0..k).map(|_| a.run()).sum())
    });
    let mut gr = grammers::DecodeSmall::new(clocks, n, common::Reads::Stream);
    g.bench_function("grammers", |b| {
        b.iter_custom(|k| (0..k).map(|_| gr.run()).sum())
    });
    g.finish();
}

fn bulk(c: &mut Criterion) {
    let clocks = Clocks::now();
    let len = common::BULK_ENCRYPT_LEN;
    let mut g = c.benchmark_group("bulk_encrypt_512k");
    g.throughput(Throughput::Bytes(len as u64));
    let mut a = ours::BulkEncrypt::new(clocks, len);
    g.bench_function("mtsender", |b| {
        b.iter_custom(|k| (0..k).map(|_| a.run()).sum())
    });
    let mut gr = grammers::BulkEncrypt::new(len);
    g.bench_function("grammers", |b| {
        b.iter_custom(|k| (0..k).map(|_| gr.run()).sum())
    });
    let mut f = ferogram::BulkEncrypt::new(len);
    g.bench_function("ferogram", |b| {
        b.iter_custom(|k| (0..k).map(|_| f.run()).sum())
    });
    let mut fl = floor::Floor::new(len, false);
    g.bench_function("floor", |b| {
        b.iter_custom(|k| (0..k).map(|_| fl.run()).sum())
    });
    g.finish();

    let len = common::BULK_DECRYPT_LEN;
    let mut g = c.benchmark_group("bulk_decrypt_1m");
    g.throughput(Throughput::Bytes(len as u64));
    let mut a = ours::BulkDecrypt::new(clocks, len);
    g.bench_function("mtsender", |b| {
        b.iter_custom(|k| (0..k).map(|_| a.run()).sum())
    });
    if let Ok(mut gr) = grammers::BulkDecrypt::new(clocks, len) {
        g.bench_function("grammers", |b| {
            b.iter_custom(|k| (0..k).map(|_| gr.run()).sum())
        });
    }
    let mut f = ferogram::BulkDecrypt::new(clocks, len);
    g.bench_function("ferogram", |b| {
        b.iter_custom(|k| (0..k).map(|_| f.run()).sum())
    });
    let mut fl = floor::Floor::new(len, true);
    g.bench_function("floor", |b| {
        b.iter_custom(|k| (0..k).map(|_| fl.run()).sum())
    });
    g.finish();
}

criterion_group!(benches, encode_small, decode_small, bulk);
criterion_main!(benches);
