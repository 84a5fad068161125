//! `/metrics`: the runtime's figures in OpenMetrics text through the
//! prometheus-client crate, served by a thread of its own (never a worker:
//! a scrape must not take time from the hot path) with bounded costs per
//! client (see `http/mod.rs` for how and why).
//!
//! Every name starts with `sprint_`. Histograms are exported with `_bucket`
//! series whose bounds double from 512 ns to 17 s (covering 1 µs to 10 s);
//! each bound is the last value of an internal bucket, so the export loses
//! no count, only resolution.

pub use crate::http::{Limits, LimitsError, ServerStats};

use crate::Observed;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use sprint_core::metrics::hist::export_bounds;
use sprint_core::metrics::Snapshot;
use std::fmt;
use std::net::SocketAddr;

/// The collector: reads the runtime at every scrape.
#[derive(Debug)]
struct RuntimeCollector(Observed);

fn histogram(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    s: &Snapshot,
) -> fmt::Result {
    // prometheus-client takes each bucket's own count and writes the
    // cumulative `_bucket` series itself.
    let mut below = 0;
    let buckets: Vec<(f64, u64)> = export_bounds()
        .map(|le| (le as f64 / 1e9, s.count_at_most(le)))
        .chain(std::iter::once((f64::INFINITY, s.count())))
        .map(|(le, cumulative)| {
            let own = cumulative - below;
            below = cumulative;
            (le, own)
        })
        .collect();
    let mut m =
        encoder.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    m.encode_histogram::<NoLabelSet>(s.sum as f64 / 1e9, s.count(), &buckets, None)
}

fn counter(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&v, None)
}

fn gauge(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: f64) -> fmt::Result {
    encoder
        .encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&v)
}

/// One value per worker, labelled `worker`.
fn per_worker(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    ty: MetricType,
    values: &[(usize, f64)],
) -> fmt::Result {
    let mut m = encoder.encode_descriptor(name, help, None, ty)?;
    for (w, v) in values {
        let labels = [("worker", w.to_string())];
        let mut f = m.encode_family(&labels)?;
        match ty {
            MetricType::Counter => f.encode_counter::<NoLabelSet, _, u64>(&(*v as u64), None)?,
            _ => f.encode_gauge(v)?,
        }
    }
    Ok(())
}

impl Collector for RuntimeCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        let h = &self.0;
        for (name, s) in h.handle.histograms() {
            let (metric, help) = match name {
                "task_poll" => ("sprint_task_poll_duration", "Task poll duration."),
                "schedule_delay" => (
                    "sprint_schedule_delay",
                    "From a task's wake (or spawn) to its poll.",
                ),
                "io_latency" => (
                    "sprint_io_latency",
                    "I/O operation latency, submission to completion.",
                ),
                _ => ("sprint_timer_lateness", "How late timers fired."),
            };
            histogram(&mut e, metric, help, &s)?;
        }
        for (name, help, s) in sprint_core::metrics::named_histograms() {
            histogram(&mut e, &format!("sprint_{name}"), &help, &s)?;
        }
        for (name, help, v) in sprint_core::metrics::named_counters() {
            counter(&mut e, &format!("sprint_{name}"), &help, v)?;
        }
        let stats = h.stats();
        gauge(
            &mut e,
            "sprint_level",
            "The tuning level: 0 basic, 1 standard, 2 aggressive, 3 enterprise, 4 turbo.",
            stats.level.index() as f64,
        )?;
        counter(
            &mut e,
            "sprint_level_transitions",
            "Moves of the level by the adaptive controller.",
            stats.level_transitions,
        )?;
        counter(
            &mut e,
            "sprint_stalls",
            "Task polls past the stall threshold.",
            stats.stalls,
        )?;
        gauge(
            &mut e,
            "sprint_tasks_alive",
            "Live tasks.",
            stats.tasks.alive as f64,
        )?;
        counter(
            &mut e,
            "sprint_tasks_spawned",
            "Tasks spawned.",
            stats.tasks.spawned,
        )?;
        counter(
            &mut e,
            "sprint_tasks_completed",
            "Tasks finished.",
            stats.tasks.completed,
        )?;
        let m = stats.memory;
        gauge(
            &mut e,
            "sprint_memory_arena_used_bytes",
            "Arena bytes handed out.",
            m.arena_used as f64,
        )?;
        gauge(
            &mut e,
            "sprint_memory_arena_capacity_bytes",
            "Arena bytes reserved: the memory budget.",
            m.arena_capacity as f64,
        )?;
        gauge(
            &mut e,
            "sprint_memory_slab_cells",
            "Task cells in use.",
            m.slab_cells as f64,
        )?;
        counter(
            &mut e,
            "sprint_memory_fallback_allocations",
            "Task cells that fell back to the global allocator.",
            m.fallback_allocations,
        )?;
        gauge(
            &mut e,
            "sprint_memory_rss_bytes",
            "Resident set size.",
            m.rss as f64,
        )?;
        gauge(
            &mut e,
            "sprint_health_problems",
            "Problems health() reports now.",
            h.health().len() as f64,
        )?;
        let w = &stats.workers;
        let col = |f: &dyn Fn(&crate::stats::WorkerFigures) -> f64| -> Vec<(usize, f64)> {
            w.iter().map(|x| (x.index, f(x))).collect()
        };
        per_worker(
            &mut e,
            "sprint_worker_polls",
            "Task polls.",
            MetricType::Counter,
            &col(&|x| x.polls as f64),
        )?;
        per_worker(
            &mut e,
            "sprint_worker_steals",
            "Tasks stolen.",
            MetricType::Counter,
            &col(&|x| x.steals as f64),
        )?;
        per_worker(
            &mut e,
            "sprint_worker_parks",
            "Times the worker slept.",
            MetricType::Counter,
            &col(&|x| x.parks as f64),
        )?;
        per_worker(
            &mut e,
            "sprint_worker_busy_ratio",
            "Share of time spent polling tasks.",
            MetricType::Gauge,
            &col(&|x| x.busy_ratio),
        )?;
        per_worker(
            &mut e,
            "sprint_worker_queue_depth",
            "Tasks queued to run.",
            MetricType::Gauge,
            &col(&|x| x.queue_depth as f64),
        )?;
        let t = |f: fn(&crate::stats::ThreadFigures) -> u64| {
            col(&move |x: &crate::stats::WorkerFigures| {
                x.thread.as_ref().map_or(0.0, |t| f(t) as f64)
            })
        };
        per_worker(
            &mut e,
            "sprint_worker_minor_faults",
            "Minor page faults of the worker thread.",
            MetricType::Counter,
            &t(|t| t.minor_faults),
        )?;
        per_worker(
            &mut e,
            "sprint_worker_major_faults",
            "Major page faults of the worker thread.",
            MetricType::Counter,
            &t(|t| t.major_faults),
        )?;
        per_worker(
            &mut e,
            "sprint_worker_voluntary_switches",
            "Voluntary context switches of the worker thread.",
            MetricType::Counter,
            &t(|t| t.voluntary_switches),
        )?;
        per_worker(
            &mut e,
            "sprint_worker_involuntary_switches",
            "Involuntary context switches of the worker thread.",
            MetricType::Counter,
            &t(|t| t.involuntary_switches),
        )?;
        Ok(())
    }
}

/// The `/metrics` server's own figures.
#[derive(Debug)]
struct ServerCollector(ServerStats);

impl Collector for ServerCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        let s = &self.0;
        for (name, help, v) in [
            (
                "connections",
                "Connections the /metrics server accepted.",
                s.connections,
            ),
            (
                "evictions",
                "Connections it closed to admit a new one at its cap.",
                s.evictions,
            ),
            (
                "timeouts",
                "Connections it closed at their read or write deadline.",
                s.timeouts,
            ),
            (
                "bad_requests",
                "Requests it refused: malformed, too large, another version.",
                s.bad_requests,
            ),
            (
                "accept_errors",
                "Accepts that failed for the process (descriptors, memory).",
                s.accept_errors,
            ),
        ] {
            counter(&mut e, &format!("sprint_metrics_server_{name}"), help, v)?;
        }
        Ok(())
    }
}

/// The metrics in OpenMetrics text, as `/metrics` serves them (less the
/// server's own, which only a running server has).
pub fn render(handle: &Observed) -> Result<String, fmt::Error> {
    render_with(handle, None)
}

fn render_with(handle: &Observed, server: Option<ServerStats>) -> Result<String, fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(RuntimeCollector(handle.clone())));
    if let Some(s) = server {
        registry.register_collector(Box::new(ServerCollector(s)));
    }
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

/// The `/metrics` server; stops when dropped. It runs on one thread of
/// its own whatever the number of clients, and bounds what each may cost
/// (see [`Limits`]).
#[derive(Debug)]
pub struct Server {
    running: crate::http::Running,
}

impl Server {
    /// Listens on `addr` and serves `GET /metrics` on a thread of its own,
    /// with the default [`Limits`].
    pub fn start(addr: &str, handle: Observed) -> std::io::Result<Server> {
        Server::start_with(addr, handle, Limits::default())
    }

    /// Like [`Server::start`], with `limits`; limits it cannot run with
    /// are an `InvalidInput` error wrapping a [`LimitsError`].
    pub fn start_with(addr: &str, handle: Observed, limits: Limits) -> std::io::Result<Server> {
        let running = crate::http::Running::start(
            addr,
            limits,
            Box::new(move |s| render_with(&handle, Some(s))),
        )?;
        tracing::info!(bound = %running.addr(), "serving /metrics");
        Ok(Server { running })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// How often each of its defences acted so far.
    pub fn stats(&self) -> ServerStats {
        self.running.stats()
    }
}
