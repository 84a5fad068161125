//! The adaptive controller's latency objective, as written in a file:
//! `schedule_delay p99 < 500us`.

use std::str::FromStr;

/// A latency objective: a histogram's quantile under a bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// `task_poll`, `schedule_delay`, `io_latency`, `timer_lateness`, or a
    /// named histogram.
    pub histogram: String,
    /// 0.5, 0.95, 0.99 or 0.999.
    pub quantile: f64,
    /// The bound, ns.
    pub bound_ns: u64,
}

/// Why an objective's text cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectiveError {
    /// Not four words with `<` third.
    #[error("{0:?} is not `<histogram> <p50|p95|p99|p99.9> < <bound>` (e.g. `schedule_delay p99 < 500us`)")]
    Shape(String),
    /// A quantile other than the four histograms keep.
    #[error("quantile {0:?} must be p50, p95, p99 or p99.9")]
    Quantile(String),
    /// A bound without a unit.
    #[error("bound {0:?} needs a unit: ns, us, ms or s")]
    NoUnit(String),
    /// A bound that is not a number.
    #[error("bound {0:?} is not a number with a unit")]
    NotANumber(String),
    /// A unit other than ns, us, ms or s.
    #[error("unit {0:?} must be ns, us, ms or s")]
    Unit(String),
    /// Zero, negative or NaN.
    #[error("bound {0:?} must be above zero")]
    NotPositive(String),
}

impl FromStr for Objective {
    type Err = ObjectiveError;

    /// `schedule_delay p99 < 500us`: a histogram, `p50`, `p95`, `p99` or
    /// `p99.9`, `<`, and a bound in `ns`, `us`, `ms` or `s`.
    fn from_str(s: &str) -> Result<Objective, ObjectiveError> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        let [histogram, q, "<", bound] = parts.as_slice() else {
            return Err(ObjectiveError::Shape(s.to_string()));
        };
        let quantile = match *q {
            "p50" => 0.5,
            "p95" => 0.95,
            "p99" => 0.99,
            "p99.9" => 0.999,
            other => return Err(ObjectiveError::Quantile(other.to_string())),
        };
        let (num, unit) = bound
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .map(|i| bound.split_at(i))
            .ok_or_else(|| ObjectiveError::NoUnit(bound.to_string()))?;
        let n: f64 = num
            .parse()
            .map_err(|_| ObjectiveError::NotANumber(bound.to_string()))?;
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            other => return Err(ObjectiveError::Unit(other.to_string())),
        };
        if n.is_nan() || n <= 0.0 {
            return Err(ObjectiveError::NotPositive(bound.to_string()));
        }
        Ok(Objective {
            histogram: histogram.to_string(),
            quantile,
            bound_ns: (n * scale) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_read_as_written_and_name_what_is_wrong() {
        let o: Objective = "relay_latency p99.9 < 1.5ms".parse().unwrap();
        assert_eq!(o.histogram, "relay_latency");
        assert_eq!(o.quantile, 0.999);
        assert_eq!(o.bound_ns, 1_500_000);
        assert_eq!(
            "x p98 < 1ms".parse::<Objective>(),
            Err(ObjectiveError::Quantile("p98".into()))
        );
        assert_eq!(
            "x p99 < 1h".parse::<Objective>(),
            Err(ObjectiveError::Unit("h".into()))
        );
        assert_eq!(
            "x p99 < 0ms".parse::<Objective>(),
            Err(ObjectiveError::NotPositive("0ms".into()))
        );
        assert!(matches!(
            "x p99 <= 1ms".parse::<Objective>(),
            Err(ObjectiveError::Shape(_))
        ));
    }
}
