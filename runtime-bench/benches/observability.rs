//! ns per record on the hot path: Sprint's histogram (the worker's own,
//! single-writer; a named one, any thread) beside hdrhistogram's
//! `record`, which needs `&mut` and so a lock or a hand-over to be read
//! from another thread. And the raw clock read a timed poll makes twice.

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use sprint::metrics::{self, AtomicHistogram};

fn record(c: &mut Criterion) {
    let mut g = c.benchmark_group("histogram/record");
    let values: Vec<u64> = (0..1024u64)
        .map(|i| 1_000 + i * 7_919 % 1_000_000)
        .collect();
    let h = AtomicHistogram::new();
    g.bench_function("sprint single-writer", |b| {
        let mut i = 0;
        b.iter(|| {
            h.record_single_writer(black_box(values[i & 1023]));
            i += 1;
        })
    });
    let named = metrics::histogram("bench_named", "bench").unwrap();
    g.bench_function("sprint named (any thread)", |b| {
        let mut i = 0;
        b.iter(|| {
            named.record_ns(black_box(values[i & 1023]));
            i += 1;
        })
    });
    let mut hdr = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    g.bench_function("hdrhistogram", |b| {
        let mut i = 0;
        b.iter(|| {
            hdr.record(black_box(values[i & 1023])).unwrap();
            i += 1;
        })
    });
    let hdr_locked = parking_lot_free_mutex();
    g.bench_function("hdrhistogram behind a mutex", |b| {
        let mut i = 0;
        b.iter(|| {
            hdr_locked
                .lock()
                .unwrap()
                .record(black_box(values[i & 1023]))
                .unwrap();
            i += 1;
        })
    });
    g.bench_function("clock read (now_raw)", |b| b.iter(metrics::now_raw));
    g.bench_function("std Instant::now", |b| b.iter(std::time::Instant::now));
    g.finish();
}

fn parking_lot_free_mutex() -> std::sync::Mutex<hdrhistogram::Histogram<u64>> {
    std::sync::Mutex::new(hdrhistogram::Histogram::<u64>::new(3).unwrap())
}

criterion_group!(benches, record);
criterion_main!(benches);
