//! The figures of the distribution benchmark, as both sides report them: one `RESULT key value`
//! line per figure on stdout (the Erlang program and the Snow bench node print the same keys),
//! parsed here into [`Figures`], and the comparison table.

use std::collections::HashMap;
use std::time::Duration;

/// Payload sizes of the throughput workloads, in bytes.
pub const SIZES: [usize; 3] = [64, 1024, 65536];

/// How much work each run does.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// Messages per throughput run, by payload size ([`SIZES`] order).
    pub messages: [u64; 3],
    /// Acknowledgement batch per size: the receiver acknowledges every this many messages and
    /// the sender keeps at most 4 batches unacknowledged.
    pub batch: [u64; 3],
    /// Timed round trips.
    pub round_trips: u64,
    /// Messages of the flood: 1 KiB binaries sent with plain `send` (no acknowledgement window),
    /// acknowledged once at the end.
    pub flood: u64,
}

impl Workload {
    /// The benchmark's default amounts (a few seconds per side and transport).
    pub const DEFAULT: Workload =
        Workload { messages: [300_000, 100_000, 3_000], batch: [1000, 500, 16], round_trips: 10_000, flood: 1_000_000 };
}

/// Payload bytes of each flood message.
pub const FLOOD_SIZE: usize = 1024;

/// The flood: one process sending without flow control of its own to a process on the other node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Flood {
    /// Messages sent (all delivered: the receiver acknowledges the last one).
    pub messages: u64,
    /// From the first send to the acknowledgement of the last.
    pub elapsed: Duration,
    /// The sending node's resident memory before the flood, in KiB.
    pub rss_before_kib: u64,
    /// The sending node's peak resident memory (VmHWM) after the flood, in KiB.
    pub peak_kib: u64,
}

impl Flood {
    /// Messages per second.
    pub fn msgs_per_s(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Throughput of one payload size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Throughput {
    /// Payload bytes per message.
    pub size: usize,
    /// Messages timed.
    pub messages: u64,
    /// Time from the first send to the last acknowledgement.
    pub elapsed: Duration,
}

impl Throughput {
    /// Messages per second.
    pub fn msgs_per_s(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Payload megabytes (10^6) per second.
    pub fn mb_per_s(&self) -> f64 {
        self.msgs_per_s() * self.size as f64 / 1e6
    }
}

/// Everything one run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    /// The first connection: name lookup, TCP, TLS (if any) and the distribution handshake.
    pub connect_first: Duration,
    /// Median of 10 fresh connections after disconnecting.
    pub connect_median: Duration,
    /// One per entry of [`SIZES`].
    pub throughput: Vec<Throughput>,
    /// Median round trip of a small message.
    pub rtt_median: Duration,
    /// 99th percentile round trip.
    pub rtt_p99: Duration,
    /// The flood.
    pub flood: Flood,
}

impl Figures {
    /// Parses the `RESULT key value` lines among `lines` (other lines are ignored).
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<Figures, String> {
        let mut values: HashMap<String, u64> = HashMap::new();
        for line in lines {
            let mut words = line.as_ref().split_whitespace();
            if words.next() != Some("RESULT") {
                continue;
            }
            let (Some(key), Some(value)) = (words.next(), words.next()) else {
                return Err(format!("malformed result line: {}", line.as_ref()));
            };
            let value = value.parse().map_err(|_| format!("malformed value in: {}", line.as_ref()))?;
            values.insert(key.to_owned(), value);
        }
        let get = |key: &str| values.get(key).copied().ok_or_else(|| format!("no RESULT {key} in the output"));
        let ns = |key: &str| get(key).map(Duration::from_nanos);
        let throughput = SIZES
            .iter()
            .map(|&size| {
                Ok(Throughput {
                    size,
                    messages: get(&format!("tput_{size}_msgs"))?,
                    elapsed: ns(&format!("tput_{size}_ns"))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Figures {
            connect_first: ns("connect_first_ns")?,
            connect_median: ns("connect_median_ns")?,
            throughput,
            rtt_median: ns("rtt_median_ns")?,
            rtt_p99: ns("rtt_p99_ns")?,
            flood: Flood {
                messages: get("flood_msgs")?,
                elapsed: ns("flood_ns")?,
                rss_before_kib: get("flood_rss_before_kib")?,
                peak_kib: get("flood_peak_kib")?,
            },
        })
    }
}

/// Reads a `kB` field (`VmRSS`, `VmHWM`) of this process's `/proc/self/status`, in KiB.
pub fn own_memory_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..].split_whitespace().next()?.parse().ok()
}

/// The `RESULT` lines for a measured throughput (what the Snow bench node prints).
pub fn throughput_lines(t: &Throughput) -> [String; 2] {
    [
        format!("RESULT tput_{}_msgs {}", t.size, t.messages),
        format!("RESULT tput_{}_ns {}", t.size, t.elapsed.as_nanos()),
    ]
}

/// The value at percentile `p` (0-100) of sorted samples (nearest rank).
pub fn percentile(sorted: &[Duration], p: u64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let n = sorted.len() as u64;
    let rank = (n * p).div_ceil(100).clamp(1, n);
    sorted[(rank - 1) as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

/// The comparison table (markdown): Snow over TLS against Erlang over TLS and plain TCP, with the
/// ratio and the target for each row. `erlang_tcp` / `erlang_tls` may be missing (not run).
pub fn table(snow: &Figures, erlang_tls: Option<&Figures>, erlang_tcp: Option<&Figures>) -> String {
    let mut out = String::new();
    out.push_str("| workload | Snow (TLS) | Erlang TLS | Erlang TCP | Snow vs Erlang TLS | target |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    let targets = ["≥ 4x", "≥ 5x", "≥ 20x"];
    for (i, s) in snow.throughput.iter().enumerate() {
        let e_tls = erlang_tls.and_then(|f| f.throughput.get(i));
        let e_tcp = erlang_tcp.and_then(|f| f.throughput.get(i));
        let cell = |t: Option<&Throughput>| {
            t.map(|t| format!("{:.0} msg/s, {:.1} MB/s", t.msgs_per_s(), t.mb_per_s())).unwrap_or_else(|| "-".into())
        };
        let ratio = e_tls.map(|e| format!("{:.2}x", s.msgs_per_s() / e.msgs_per_s())).unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "| send {} B | {} | {} | {} | {} | {} |\n",
            s.size,
            cell(Some(s)),
            cell(e_tls),
            cell(e_tcp),
            ratio,
            targets.get(i).copied().unwrap_or("")
        ));
    }
    let lat = |name: &str, get: fn(&Figures) -> Duration, fmt: fn(Duration) -> String, target: &str| {
        let ratio = erlang_tcp
            .map(|e| format!("{:.2}x of Erlang TCP", get(snow).as_secs_f64() / get(e).as_secs_f64().max(1e-12)))
            .unwrap_or_else(|| "-".into());
        format!(
            "| {name} | {} | {} | {} | {ratio} | {target} |\n",
            fmt(get(snow)),
            erlang_tls.map(|f| fmt(get(f))).unwrap_or_else(|| "-".into()),
            erlang_tcp.map(|f| fmt(get(f))).unwrap_or_else(|| "-".into()),
        )
    };
    let flood_cell = |f: Option<&Figures>| {
        f.map(|f| {
            format!(
                "{:.0} msg/s, peak RSS {:.1} MiB (+{:.1} MiB)",
                f.flood.msgs_per_s(),
                f.flood.peak_kib as f64 / 1024.0,
                f.flood.peak_kib.saturating_sub(f.flood.rss_before_kib) as f64 / 1024.0
            )
        })
        .unwrap_or_else(|| "-".into())
    };
    out.push_str(&format!(
        "| flood: {} x 1 KiB, plain send | {} | {} | {} | {} | all delivered, memory bounded |\n",
        snow.flood.messages,
        flood_cell(Some(snow)),
        flood_cell(erlang_tls),
        flood_cell(erlang_tcp),
        erlang_tls
            .map(|e| format!("{:.2}x", snow.flood.msgs_per_s() / e.flood.msgs_per_s().max(1e-9)))
            .unwrap_or_else(|| "-".into()),
    ));
    out.push_str(&lat("round trip median", |f| f.rtt_median, us, "≤ Erlang TCP"));
    out.push_str(&lat("round trip p99", |f| f.rtt_p99, us, "≤ Erlang TCP"));
    out.push_str(&lat("first connection", |f| f.connect_first, ms, "< 5 ms"));
    out.push_str(&lat("reconnect (median of 10)", |f| f.connect_median, ms, "-"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_results_and_reports_missing_keys() {
        let lines = [
            "noise",
            "RESULT connect_first_ns 2000000",
            "RESULT connect_median_ns 1000000",
            "RESULT tput_64_msgs 1000",
            "RESULT tput_64_ns 1000000000",
            "RESULT tput_1024_msgs 10",
            "RESULT tput_1024_ns 1000",
            "RESULT tput_65536_msgs 10",
            "RESULT tput_65536_ns 1000",
            "RESULT rtt_median_ns 50000",
            "RESULT rtt_p99_ns 90000",
            "RESULT flood_msgs 1000",
            "RESULT flood_ns 1000000000",
            "RESULT flood_rss_before_kib 10240",
            "RESULT flood_peak_kib 20480",
        ];
        let f = Figures::parse(&lines).unwrap();
        assert_eq!(f.throughput[0].msgs_per_s(), 1000.0);
        assert!((f.throughput[0].mb_per_s() - 0.064).abs() < 1e-9);
        assert_eq!(f.rtt_p99, Duration::from_micros(90));
        let err = Figures::parse(&lines[..4]).unwrap_err();
        assert!(err.contains("tput_64_ns"), "{err}");
        let t = table(&f, Some(&f), None);
        assert!(t.contains("| send 64 B | 1000 msg/s, 0.1 MB/s | 1000 msg/s, 0.1 MB/s | - | 1.00x |"), "{t}");
        assert!(t.contains("| 1000 msg/s, peak RSS 20.0 MiB (+10.0 MiB) |"), "{t}");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&v, 50), Duration::from_micros(50));
        assert_eq!(percentile(&v, 99), Duration::from_micros(99));
        assert_eq!(percentile(&v[..1], 99), Duration::from_micros(1));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }
}
