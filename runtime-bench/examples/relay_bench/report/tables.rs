//! The `report` mode's tables, from the rows of every run: for each
//! server and rate the median and the range (lowest–highest) over the
//! runs kept, the runs left out as disturbed (the generator itself was
//! late: its send lag p99 over `--disturbed-lag-us`, so the latency it
//! measured is partly its own; or the server's threads waited for a CPU
//! taken by something else more than `--disturbed-wait-pct` of the
//! time), which side limited each point (the relay, or the generator
//! when it was busy over `--generator-bound-pct` of its time), and a
//! summary in the shape of issue 15's table, one column per server,
//! written as Markdown to paste.

use super::Row;
use serde::Serialize;

/// The median and the range of one measure over the runs kept.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Spread {
    /// `None` for no values. The median of an even count is the mean of
    /// the middle two.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            lo: v[0],
            hi: v[n - 1],
        })
    }

    /// `median (lo–hi)` with `prec` decimals.
    pub fn cell(&self, prec: usize) -> String {
        format!(
            "{:.prec$} ({:.prec$}–{:.prec$})",
            self.median, self.lo, self.hi
        )
    }
}

/// A cell for an optional spread ("—" when every run was left out).
fn cell(s: Option<Spread>, prec: usize) -> String {
    s.map_or_else(|| "—".to_string(), |s| s.cell(prec))
}

/// One server at one rate, over the runs.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub server: String,
    pub rate: u64,
    /// Runs measured (disturbed ones included).
    pub runs: usize,
    /// Runs kept for the medians.
    pub kept: usize,
    pub delivered_pct: Option<Spread>,
    pub p50_us: Option<Spread>,
    pub p99_us: Option<Spread>,
    pub p999_us: Option<Spread>,
    /// Server CPU, cores.
    pub server_cpu: Option<Spread>,
    /// The generator's busy share, %.
    pub generator_busy_pct: Option<Spread>,
    /// Kept runs that were generator-bound.
    pub generator_bound: usize,
    /// The generator's send lag p99 of each run, µs, in run order
    /// (disturbed ones included).
    pub send_lag_p99_us: Vec<f64>,
    /// The server's share of time waiting for a CPU, %, each run.
    pub server_wait_pct: Vec<f64>,
    /// Whether a kept run delivered less than 99.9 %.
    pub fell_behind: bool,
}

/// The points of `rows`, server by server in `servers`' order, rates
/// rising.
pub fn points(rows: &[Row], servers: &[String]) -> Vec<Point> {
    let mut out = Vec::new();
    for server in servers {
        let mut rates: Vec<u64> = rows
            .iter()
            .filter(|x| &x.server == server)
            .map(|x| x.load.offered_rate)
            .collect();
        rates.sort_unstable();
        rates.dedup();
        for rate in rates {
            let mut all: Vec<&Row> = rows
                .iter()
                .filter(|x| &x.server == server && x.load.offered_rate == rate)
                .collect();
            all.sort_by_key(|x| x.run);
            let kept: Vec<&Row> = all.iter().copied().filter(|x| !x.disturbed).collect();
            let of = |f: &dyn Fn(&Row) -> f64| Spread::of(kept.iter().map(|x| f(x)));
            out.push(Point {
                server: server.clone(),
                rate,
                runs: all.len(),
                kept: kept.len(),
                delivered_pct: of(&|x| x.load.delivered_fraction * 100.0),
                p50_us: of(&|x| x.load.p50_us),
                p99_us: of(&|x| x.load.p99_us),
                p999_us: of(&|x| x.load.p999_us),
                server_cpu: of(&|x| x.server_cpu),
                generator_busy_pct: of(&|x| x.load.generator_busy * 100.0),
                generator_bound: kept.iter().filter(|x| x.generator_bound).count(),
                send_lag_p99_us: all.iter().map(|x| x.load.send_lag_p99_us).collect(),
                server_wait_pct: all.iter().map(|x| x.server_wait_share * 100.0).collect(),
                fell_behind: kept.iter().any(|x| x.load.delivered_fraction < 0.999),
            });
        }
    }
    out
}

/// Which side limited a point: the relay, unless kept runs were
/// generator-bound.
pub fn bound_by(p: &Point) -> String {
    match p.generator_bound {
        _ if p.kept == 0 => "—".into(),
        0 => "relay".into(),
        n if n == p.kept => "generator".into(),
        n => format!("generator {n}/{}", p.kept),
    }
}

/// Prints each point's medians and ranges, then the runs left out.
pub fn print_points(
    points: &[Point],
    rows: &[Row],
    disturbed_lag_us: f64,
    disturbed_wait_pct: f64,
    generator_bound_pct: f64,
) {
    println!(
        "median (lowest–highest) over the runs kept; a run is left out as disturbed (*) when the generator's send lag p99 is over {disturbed_lag_us} µs or the server waited for a CPU over {disturbed_wait_pct} % of the time; \
         a run is generator-bound when the generator was busy over {generator_bound_pct} % of its time (its figures are then the generator's limit, not the relay's)"
    );
    println!(
        "{:>11} {:>7} {:>5} {:>25} {:>22} {:>22} {:>22} {:>19} {:>19} {:>13}  send lag p99 µs / server wait %, each run",
        "server", "rate/s", "kept", "delivered %", "p50 µs", "p99 µs", "p99.9 µs", "server CPU", "generator busy %", "bound by"
    );
    for p in points {
        let lags: Vec<String> = p
            .send_lag_p99_us
            .iter()
            .zip(&p.server_wait_pct)
            .map(|(l, w)| {
                let mark = if *l > disturbed_lag_us || *w > disturbed_wait_pct {
                    "*"
                } else {
                    ""
                };
                format!("{l:.0}/{w:.1}{mark}")
            })
            .collect();
        println!(
            "{:>11} {:>7} {:>5} {:>25} {:>22} {:>22} {:>22} {:>19} {:>19} {:>13}  {}",
            p.server,
            p.rate,
            format!("{}/{}", p.kept, p.runs),
            cell(p.delivered_pct, 3),
            cell(p.p50_us, 1),
            cell(p.p99_us, 1),
            cell(p.p999_us, 1),
            cell(p.server_cpu, 2),
            cell(p.generator_busy_pct, 0),
            bound_by(p),
            lags.join(" ")
        );
    }
    let disturbed: Vec<&Row> = rows.iter().filter(|x| x.disturbed).collect();
    if disturbed.is_empty() {
        println!("disturbed runs: none");
    } else {
        println!(
            "disturbed runs (left out of the medians; * above): {}",
            disturbed.len()
        );
        for x in disturbed {
            println!(
                "  run {} {} at {}/s: send lag p99 {:.0} µs, server waited {:.1} % (p99 {:.1} µs, {:.3} % delivered)",
                x.run + 1,
                x.server,
                x.load.offered_rate,
                x.load.send_lag_p99_us,
                x.server_wait_share * 100.0,
                x.load.p99_us,
                x.load.delivered_fraction * 100.0
            );
        }
    }
}

/// `10000` → `10k`.
fn k(rate: u64) -> String {
    if rate.is_multiple_of(1000) {
        format!("{}k", rate / 1000)
    } else {
        rate.to_string()
    }
}

/// Prints the summary in the shape of issue 15's table: the relay's p50
/// at 50k frames/s (when 50 000 is among the rates) and its p99 at every
/// listed rate, one column per server, as Markdown, then the generator's
/// busy share at each rate; a cell where a kept run was generator-bound
/// is marked ‡.
pub fn print_summary(
    points: &[Point],
    servers: &[String],
    rates: &[u64],
    generator_bound_pct: f64,
) {
    let find = |s: &str, rate: u64| points.iter().find(|p| p.server == s && p.rate == rate);
    let marks = |p: Option<&Point>| {
        let mut m = String::new();
        if p.is_some_and(|p| p.fell_behind) {
            m.push('†');
        }
        if p.is_some_and(|p| p.generator_bound > 0) {
            m.push('‡');
        }
        m
    };
    let median = |p: Option<&Point>, f: fn(&Point) -> Option<Spread>| {
        p.and_then(f).map_or_else(
            || "—".to_string(),
            |s| format!("{:.0}{}", s.median, marks(p)),
        )
    };
    let ranged = |p: Option<&Point>, f: fn(&Point) -> Option<Spread>| {
        p.and_then(f).map_or_else(
            || "—".to_string(),
            |s| format!("{:.0}{} ({:.0}–{:.0})", s.median, marks(p), s.lo, s.hi),
        )
    };
    let row = |measure: String, cells: Vec<String>| {
        println!("| {measure} | {} |", cells.join(" | "));
    };
    println!();
    println!(
        "summary (medians over the runs kept; ranges lowest–highest; † a kept run delivered < 99.9 %; ‡ a kept run was generator-bound: the generator busy over {generator_bound_pct} % of its time, so the figure is partly the generator's):"
    );
    row("measure".into(), servers.to_vec());
    row("---".into(), servers.iter().map(|_| "---".into()).collect());
    if rates.contains(&50_000) {
        row(
            "relay p50 at 50k frames/s, µs".into(),
            servers
                .iter()
                .map(|s| ranged(find(s, 50_000), |p| p.p50_us))
                .collect(),
        );
    }
    let ks: Vec<String> = rates.iter().map(|r| k(*r)).collect();
    row(
        format!("relay p99 at {}, µs", ks.join(" / ")),
        servers
            .iter()
            .map(|s| {
                rates
                    .iter()
                    .map(|r| median(find(s, *r), |p| p.p99_us))
                    .collect::<Vec<_>>()
                    .join(" / ")
            })
            .collect(),
    );
    for r in rates {
        row(
            format!("relay p99 at {}, µs", k(*r)),
            servers
                .iter()
                .map(|s| ranged(find(s, *r), |p| p.p99_us))
                .collect(),
        );
    }
    for r in rates {
        row(
            format!("generator busy % at {}", k(*r)),
            servers
                .iter()
                .map(|s| ranged(find(s, *r), |p| p.generator_busy_pct))
                .collect(),
        );
    }
    row(
        "runs kept / measured".into(),
        servers
            .iter()
            .map(|s| {
                let (kept, runs) = points
                    .iter()
                    .filter(|p| &p.server == s)
                    .fold((0, 0), |(a, b), p| (a + p.kept, b + p.runs));
                format!("{kept}/{runs}")
            })
            .collect(),
    );
}

/// For the plots: at each point, the kept run whose p99 is the median
/// (the lower middle of an even count), grouped by server.
pub fn median_runs(rows: &[Row], points: &[Point]) -> Vec<Row> {
    points
        .iter()
        .filter_map(|p| {
            let mut kept: Vec<&Row> = rows
                .iter()
                .filter(|x| x.server == p.server && x.load.offered_rate == p.rate && !x.disturbed)
                .collect();
            kept.sort_by(|a, b| a.load.p99_us.total_cmp(&b.load.p99_us));
            kept.get(kept.len().saturating_sub(1) / 2)
                .map(|x| (*x).clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::LoadResult;

    fn row(server: &str, run: usize, p99_us: f64, disturbed: bool) -> Row {
        Row {
            server: server.into(),
            run,
            disturbed,
            generator_bound: false,
            load: LoadResult {
                offered_rate: 10_000,
                messages: 10_000,
                subscribers: 16,
                delivered_per_s: 160_000.0,
                delivered_fraction: 1.0,
                p50_us: p99_us / 2.0,
                p95_us: p99_us,
                p99_us,
                p999_us: p99_us,
                max_us: p99_us,
                duplicates: 0,
                corrupted: 0,
                reordered: 0,
                missing: 0,
                checked_bytewise: 0,
                reads_timestamped: 1.0,
                closed_subscribers: 0,
                generator_cpu: 1.0,
                generator_busy: 0.5,
                generator_busy_wall: 0.5,
                send_lag_p99_us: if disturbed { 5_000.0 } else { 20.0 },
                cdf: vec![],
                p99_by_second_us: vec![],
            },
            server_cpu: 0.5,
            server_wait_share: 0.0,
            server_cpu_us_per_delivery: 1.0,
            rss_mb: 10.0,
            allocations: None,
            allocations_per_message: 0.0,
            page_faults: 0,
        }
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let s = Spread::of([4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.median, s.lo, s.hi), (2.5, 1.0, 4.0));
        let s = Spread::of([5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.lo, s.hi), (3.0, 1.0, 5.0));
        assert!(Spread::of([]).is_none());
    }

    #[test]
    fn disturbed_runs_are_counted_but_left_out_of_the_medians() {
        let rows = [
            row("tokio", 0, 100.0, false),
            row("tokio", 1, 9_000.0, true),
            row("tokio", 2, 200.0, false),
            row("basic", 0, 50.0, true),
        ];
        let p = points(&rows, &["tokio".into(), "basic".into()]);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].server.as_str(), p[0].runs, p[0].kept),
            ("tokio", 3, 2)
        );
        let p99 = p[0].p99_us.unwrap();
        assert_eq!((p99.median, p99.lo, p99.hi), (150.0, 100.0, 200.0));
        assert_eq!(
            p[0].send_lag_p99_us,
            vec![20.0, 5_000.0, 20.0],
            "every run, in order"
        );
        assert_eq!((p[1].kept, p[1].runs), (0, 1));
        assert!(p[1].p99_us.is_none(), "no run kept: no median");
        let m = median_runs(&rows, &p);
        assert_eq!(m.len(), 1, "a point with no run kept is not plotted");
        assert_eq!(m[0].load.p99_us, 100.0, "the lower middle of two");
    }
}
