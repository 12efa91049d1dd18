//! Criterion benchmarks of the hot path on a simulated organisation: compiling the bundled
//! VRL programs (the bulk of a cold start), the parse floor,
//! normalization per source, scoring on warm baselines, the whole pipeline per record on the
//! in-memory and SQLite stores, and rebaseline of a stored log.
//!
//! `cargo bench -p provguard --bench hot_path`; `PROVGUARD_BENCH_PEOPLE` sets the organisation's
//! size (default 300) and `PROVGUARD_BENCH_LOG` the rebaseline sizes (default `100000`;
//! `provguard bench` times 1,000,000 with its peak memory). `cargo test --benches` runs each
//! once, as CI does, to keep them working.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use provguard::bench::{self, Record, WarmState, Workload};
use provguard_core::store::{MemoryStore, SqliteStore, Store};

/// The allocator of the binaries, so the figures are theirs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn workload() -> &'static Workload {
    static W: OnceLock<Workload> = OnceLock::new();
    W.get_or_init(|| {
        Workload::simulate(7, env_or("PROVGUARD_BENCH_PEOPLE", 300), 30, 7)
            .expect("the simulator runs")
    })
}

/// A group with one benchmark per source, each running `f` over that source's test records.
fn per_source(c: &mut Criterion, group: &str, mut f: impl FnMut(&Record)) {
    let w = workload();
    let mut g = c.benchmark_group(group);
    for source in bench::SOURCES {
        let recs: Vec<&Record> = w.of_source(source).collect();
        if recs.is_empty() {
            continue;
        }
        g.throughput(Throughput::Elements(recs.len() as u64));
        g.bench_function(BenchmarkId::from_parameter(source), |b| {
            b.iter(|| recs.iter().for_each(|r| f(r)))
        });
    }
    g.finish();
}

fn parse_and_normalize(c: &mut Criterion) {
    per_source(c, "parse_floor", |r| {
        std::hint::black_box(bench::parse(r));
    });
    let (mut normalizer, _) = bench::defaults().expect("bundled programs compile");
    let now = workload().now;
    per_source(c, "normalize", |r| {
        std::hint::black_box(bench::normalize(&mut normalizer, r, now));
    });
}

/// Compiling each bundled VRL program: paid once per process, so it is most of a cold start.
fn compile(c: &mut Criterion) {
    let fns = provguard_core::normalize::functions();
    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    for (name, src) in provguard_core::normalize::BUNDLED {
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| provguard_core::normalize::compile(name, src, &fns).expect("compiles"))
        });
    }
    g.finish();
}

fn score(c: &mut Criterion) {
    let w = workload();
    let (mut normalizer, cfg) = bench::defaults().expect("bundled programs compile");
    let p = w
        .warm(
            MemoryStore::new(),
            bench::defaults().unwrap().0,
            cfg.detect.clone(),
        )
        .expect("history learns");
    let warm = WarmState::from_memory(p.store(), cfg.detect.clone()).unwrap();
    let events: Vec<_> = w
        .test
        .iter()
        .flat_map(|r| bench::normalize(&mut normalizer, r, w.now))
        .collect();
    let mut g = c.benchmark_group("score");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("warm", |b| {
        b.iter(|| std::hint::black_box(bench::score_only(&events, &warm)))
    });
    g.finish();
}

/// The whole pipeline per record: each sample starts from freshly warmed baselines and times
/// `iters` records of the test period (records beyond its length get new ids, so none is a
/// duplicate).
fn pipeline_on<S: Store>(c: &mut Criterion, name: &str, open: impl Fn() -> S) {
    let w = workload();
    let (_, cfg) = bench::defaults().unwrap();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut p = w
                .warm(open(), bench::defaults().unwrap().0, cfg.detect.clone())
                .expect("history learns");
            let records = bench::unique_records(&w.test, iters as usize);
            let start = Instant::now();
            for r in &records {
                bench::process(&mut p, r, w.now).expect("the pipeline runs");
            }
            start.elapsed()
        })
    });
    g.finish();
}

fn pipeline(c: &mut Criterion) {
    pipeline_on(c, "memory", MemoryStore::new);
    let dir = tempfile_dir();
    let n = std::sync::atomic::AtomicUsize::new(0);
    pipeline_on(c, "sqlite", || {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SqliteStore::open(&dir.join(format!("p{i}.db"))).expect("SQLite opens")
    });
    std::fs::remove_dir_all(&dir).ok();
}

fn rebaseline(c: &mut Criterion) {
    let w = workload();
    let sizes: Vec<u64> = std::env::var("PROVGUARD_BENCH_LOG")
        .unwrap_or_else(|_| "100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let dir = tempfile_dir();
    let events = bench::history_events(w).expect("history normalizes");
    let mut g = c.benchmark_group("rebaseline");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    for n in sizes {
        let file = dir.join(format!("log-{n}.db"));
        bench::fill_log(&file, &events, n).expect("the log fills");
        g.throughput(Throughput::Elements(n));
        g.bench_function(BenchmarkId::new("sqlite", n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += bench::rebaseline_once(&file).expect("rebaseline runs");
                }
                total
            })
        });
    }
    g.finish();
    std::fs::remove_dir_all(&dir).ok();
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("provguard-criterion-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

criterion_group!(
    benches,
    compile,
    parse_and_normalize,
    score,
    pipeline,
    rebaseline
);
criterion_main!(benches);
