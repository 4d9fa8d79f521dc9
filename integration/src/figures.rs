//! The figures of the distribution benchmark, as both sides report them: one `RESULT key value`
//! line per figure on stdout (the Erlang program and the Snow bench node print the same keys),
//! parsed here into [`Figures`]; the harness adds what each phase cost the nodes
//! ([`crate::meter`]). The comparison table is [`crate::table`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::meter::Cost;

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

/// The request/reply and fan-in workloads (issue 15), apart from [`Workload`] so that callers of
/// the two-node workloads alone (the C ABI bench) need not name them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Service {
    /// Timed calls per entry of [`CALLERS`] (spread over the callers), after a warm-up of a tenth.
    pub calls: u64,
    /// Structured messages per fan-in sender ([`FANIN_SENDERS`] of them), after a warm-up of a
    /// tenth.
    pub fanin: u64,
    /// Seconds the connection stays up without traffic while the nodes' idle CPU is measured.
    pub idle_secs: u64,
}

impl Service {
    /// The benchmark's default amounts.
    pub const DEFAULT: Service = Service { calls: 40_000, fanin: 25_000, idle_secs: 10 };
    /// None of these workloads.
    pub const NONE: Service = Service { calls: 0, fanin: 0, idle_secs: 0 };
}

/// Concurrent callers of the request/reply workloads: each calls the server node's registered
/// `bench_echo` by name (`{bench_echo, node} ! {self(), Seq}`) and waits for `Seq` before the next.
pub const CALLERS: [u64; 2] = [16, 64];
/// Processes sending structured messages to one receiver on the other node.
pub const FANIN_SENDERS: u64 = 4;
/// The fan-in receiver acknowledges every this many messages of a sender (by its sequence number);
/// a sender keeps at most 4 batches unacknowledged.
pub const FANIN_BATCH: u64 = 100;

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
    /// Request/reply with concurrent callers, one per entry of [`CALLERS`] that ran.
    pub calls: Vec<Calls>,
    /// Fan-in of structured messages, if it ran.
    pub fanin: Option<Rate>,
    /// What each phase cost the nodes (client first, then server), by phase name: `flood`,
    /// `tput_64`, `tput_1024`, `tput_65536`, `rtt`, `calls_16`, `calls_64`, `fanin`, `idle`.
    /// Filled by the harness, empty after [`Figures::parse`].
    pub costs: BTreeMap<String, Cost>,
}

/// Request/reply with concurrent callers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calls {
    /// Callers at once.
    pub callers: u64,
    /// Calls timed.
    pub calls: u64,
    /// From the first call to the last reply.
    pub elapsed: Duration,
    /// Median latency of a call (send to reply).
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl Calls {
    /// Calls per second.
    pub fn per_s(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Messages over time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Messages timed.
    pub messages: u64,
    /// From the first send to the last acknowledgement.
    pub elapsed: Duration,
}

impl Rate {
    /// Messages per second.
    pub fn per_s(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl Figures {
    /// Parses the `RESULT key value` lines among `lines` (other lines are ignored).
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<Figures, String> {
        let values = result_values(lines)?;
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
            calls: CALLERS
                .iter()
                .filter(|c| values.contains_key(&format!("calls_{c}_n")))
                .map(|&callers| {
                    let key = |k: &str| format!("calls_{callers}_{k}");
                    Ok(Calls {
                        callers,
                        calls: get(&key("n"))?,
                        elapsed: ns(&key("ns"))?,
                        p50: ns(&key("p50_ns"))?,
                        p99: ns(&key("p99_ns"))?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?,
            fanin: match values.contains_key("fanin_msgs") {
                true => Some(Rate { messages: get("fanin_msgs")?, elapsed: ns("fanin_ns")? }),
                false => None,
            },
            costs: BTreeMap::new(),
        })
    }
}

/// The `RESULT key value` lines among `lines` (other lines are ignored), by key.
pub fn result_values<S: AsRef<str>>(lines: &[S]) -> Result<HashMap<String, u64>, String> {
    let mut values = HashMap::new();
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
    Ok(values)
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
        assert!(f.calls.is_empty() && f.fanin.is_none(), "workloads that did not run are absent");
        let mut more: Vec<&str> = lines.to_vec();
        more.extend([
            "RESULT calls_16_n 32000",
            "RESULT calls_16_ns 2000000000",
            "RESULT calls_16_p50_ns 400000",
            "RESULT calls_16_p99_ns 900000",
            "RESULT fanin_msgs 100",
            "RESULT fanin_ns 1000000",
        ]);
        let f = Figures::parse(&more).unwrap();
        assert_eq!(f.calls.len(), 1);
        assert_eq!((f.calls[0].callers, f.calls[0].per_s()), (16, 16000.0));
        assert_eq!(f.calls[0].p99, Duration::from_micros(900));
        assert_eq!(f.fanin.map(|r| r.per_s()), Some(100_000.0));
        more.retain(|l| !l.contains("calls_16_p99"));
        let err = Figures::parse(&more).unwrap_err();
        assert!(err.contains("calls_16_p99_ns"), "{err}");
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
