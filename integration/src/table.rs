//! The benchmarks' comparison tables (markdown): rows of Snow against Erlang/OTP over TLS and
//! plain TCP with the ratios and the target, and the summary of the ratios over repeated runs
//! (`SNOW_BENCH_RUNS`). [`dist_rows`] and [`cost_rows`] are the distribution bench's; the cluster
//! bench builds its own [`Row`]s.

use std::time::Duration;

use crate::cluster_bench::{ClusterFigures, Spread};
use crate::figures::{Calls, Figures, Throughput};
use crate::meter::Cost;

/// One line of a comparison table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// What was measured; rows of different runs with the same name are summarised together.
    pub name: String,
    /// The figure of each side: Snow, then the two baselines (`-` where a side did not run).
    pub cells: Vec<String>,
    /// Ratios of Snow against a baseline, each with its label (e.g. `"TLS"`, `"of Erlang TCP"`).
    pub ratios: Vec<(String, f64)>,
    /// The target, as the issue states it (empty if none).
    pub target: String,
}

/// Renders rows under a header naming the sides.
pub fn render(sides: &[&str], rows: &[Row]) -> String {
    let mut out = format!("| workload | {} | Snow vs baseline | target |\n", sides.join(" | "));
    out.push_str(&format!("|---|{}---|---|\n", "---|".repeat(sides.len())));
    for row in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            row.name,
            row.cells.join(" | "),
            ratios(&row.ratios),
            row.target
        ));
    }
    out
}

fn ratios(ratios: &[(String, f64)]) -> String {
    if ratios.is_empty() {
        return "-".into();
    }
    ratios.iter().map(|(label, r)| format!("{r:.2}x {label}").trim_end().to_owned()).collect::<Vec<_>>().join(", ")
}

/// The ratios of repeated runs: per row and ratio label, the value of each run and the min-max.
pub fn summary(runs: &[Vec<Row>]) -> String {
    let mut out =
        format!("| workload | ratio in each of {} runs | min-max | target |\n|---|---|---|---|\n", runs.len());
    let Some(first) = runs.first() else { return out };
    for row in first {
        for (label, _) in &row.ratios {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|run| run.iter().find(|r| r.name == row.name))
                .filter_map(|r| r.ratios.iter().find(|(l, _)| l == label).map(|(_, v)| *v))
                .collect();
            let (min, max) =
                values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
            let each = values.iter().map(|v| format!("{v:.2}")).collect::<Vec<_>>().join(", ");
            let name = if label.is_empty() { row.name.clone() } else { format!("{} ({label})", row.name) };
            out.push_str(&format!("| {name} | {each} | {min:.2}-{max:.2}x | {} |\n", row.target));
        }
    }
    out
}

/// `a / b`, or `None` if either side is missing or `b` is zero.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn push_ratio(ratios: &mut Vec<(String, f64)>, label: &str, value: Option<f64>) {
    if let Some(v) = value {
        ratios.push((label.to_owned(), v));
    }
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Microseconds with one decimal.
pub fn us(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}

fn cell<T>(f: Option<&T>, show: impl Fn(&T) -> String) -> String {
    f.map(show).unwrap_or_else(|| "-".into())
}

/// The distribution bench's throughput and latency rows: Snow (TLS) against Erlang TLS and TCP.
pub fn dist_rows(snow: Option<&Figures>, tls: Option<&Figures>, tcp: Option<&Figures>) -> Vec<Row> {
    let sides = [snow, tls, tcp];
    let mut rows = Vec::new();
    let targets = ["≥ 4x TLS", "≥ 5x TLS", "≥ 20x TLS and ≥ 3 GB/s"];
    for (i, size) in crate::figures::SIZES.iter().enumerate() {
        let t = |f: Option<&Figures>| f.and_then(|f| f.throughput.get(i).copied());
        let show = |t: &Throughput| format!("{:.0} msg/s, {:.1} MB/s", t.msgs_per_s(), t.mb_per_s());
        let mut ratios = Vec::new();
        let rate = |f| t(f).map(|t| t.msgs_per_s());
        push_ratio(&mut ratios, "TLS", ratio(rate(snow), rate(tls)));
        rows.push(Row {
            name: format!("send {size} B"),
            cells: sides.iter().map(|f| cell(t(*f).as_ref(), show)).collect(),
            ratios,
            target: targets.get(i).copied().unwrap_or("").into(),
        });
    }
    let flood = |f: &Figures| {
        format!(
            "{:.0} msg/s, peak RSS {:.1} MiB (+{:.1} MiB)",
            f.flood.msgs_per_s(),
            f.flood.peak_kib as f64 / 1024.0,
            f.flood.peak_kib.saturating_sub(f.flood.rss_before_kib) as f64 / 1024.0
        )
    };
    let mut ratios = Vec::new();
    let rate = |f: Option<&Figures>| f.map(|f| f.flood.msgs_per_s());
    push_ratio(&mut ratios, "TLS", ratio(rate(snow), rate(tls)));
    rows.push(Row {
        name: "flood: 1 KiB, plain send".into(),
        cells: sides.iter().map(|f| cell(*f, flood)).collect(),
        ratios,
        target: "all delivered, memory bounded".into(),
    });
    let latency = |name: &str, get: fn(&Figures) -> Duration, show: fn(Duration) -> String, target: &str| {
        let mut ratios = Vec::new();
        let secs = |f: Option<&Figures>| f.map(|f| get(f).as_secs_f64());
        push_ratio(&mut ratios, "of Erlang TCP", ratio(secs(snow), secs(tcp)));
        Row {
            name: name.into(),
            cells: sides.iter().map(|f| cell(*f, |f| show(get(f)))).collect(),
            ratios,
            target: target.into(),
        }
    };
    rows.push(latency("round trip median", |f| f.rtt_median, us, "≤ Erlang TCP"));
    rows.push(latency("round trip p99", |f| f.rtt_p99, us, "≤ Erlang TCP"));
    let callers: Vec<u64> = sides.iter().flatten().flat_map(|f| f.calls.iter().map(|c| c.callers)).collect();
    for n in crate::figures::CALLERS.iter().filter(|n| callers.contains(n)) {
        let c = |f: Option<&Figures>| f.and_then(|f| f.calls.iter().find(|c| c.callers == *n).copied());
        let mut ratios = Vec::new();
        let per_s = |f| c(f).map(|c| c.per_s());
        push_ratio(&mut ratios, "TLS", ratio(per_s(snow), per_s(tls)));
        push_ratio(&mut ratios, "TCP", ratio(per_s(snow), per_s(tcp)));
        rows.push(Row {
            name: format!("request/reply, {n} callers: calls/s"),
            cells: sides
                .iter()
                .map(|f| cell(c(*f).as_ref(), |c: &Calls| format!("{:.0} calls/s", c.per_s())))
                .collect(),
            ratios,
            target: "≥ 2x TLS and > 1x TCP".into(),
        });
        let mut ratios = Vec::new();
        let p99 = |f| c(f).map(|c| c.p99.as_secs_f64());
        push_ratio(&mut ratios, "of Erlang TCP", ratio(p99(snow), p99(tcp)));
        rows.push(Row {
            name: format!("request/reply, {n} callers: latency p50 / p99"),
            cells: sides
                .iter()
                .map(|f| cell(c(*f).as_ref(), |c: &Calls| format!("{} / {}", us(c.p50), us(c.p99))))
                .collect(),
            ratios,
            target: "p99 ≤ Erlang TCP".into(),
        });
    }
    if sides.iter().flatten().any(|f| f.fanin.is_some()) {
        let r = |f: Option<&Figures>| f.and_then(|f| f.fanin);
        let mut ratios = Vec::new();
        let per_s = |f| r(f).map(|r| r.per_s());
        push_ratio(&mut ratios, "TLS", ratio(per_s(snow), per_s(tls)));
        push_ratio(&mut ratios, "TCP", ratio(per_s(snow), per_s(tcp)));
        rows.push(Row {
            name: format!("fan-in: structured messages, {} senders to 1", crate::figures::FANIN_SENDERS),
            cells: sides.iter().map(|f| cell(r(*f).as_ref(), |r| format!("{:.0} msg/s", r.per_s()))).collect(),
            ratios,
            target: "≥ 5x TLS and ≥ 2x TCP".into(),
        });
    }
    rows.push(latency("first connection", |f| f.connect_first, ms, "< 5 ms"));
    rows.push(latency("reconnect (median of 10)", |f| f.connect_median, ms, ""));
    rows
}

/// A note on a CPU figure measured in too few clock ticks to be compared (no ratio is given then).
fn coarse_note(c: &Cost) -> String {
    match c.coarse() {
        true => format!(
            " (coarse: {} ticks in all)",
            c.cpu.iter().sum::<Duration>().as_millis() / c.tick.as_millis().max(1)
        ),
        false => String::new(),
    }
}

/// The phases of the distribution bench and what their rows are called in the cost table.
const PHASES: [(&str, &str); 8] = [
    ("flood", "flood: 1 KiB, plain send"),
    ("tput_64", "send 64 B"),
    ("tput_1024", "send 1 KiB"),
    ("tput_65536", "send 64 KiB"),
    ("rtt", "round trip"),
    ("calls_16", "request/reply, 16 callers"),
    ("calls_64", "request/reply, 64 callers"),
    ("fanin", "fan-in: structured messages"),
];

/// What each workload cost the two nodes (CPU per message of the client and of the server, from
/// `/proc/<pid>/stat`), the idle CPU of a connected pair, and bytes on the wire per message.
pub fn cost_rows(snow: Option<&Figures>, tls: Option<&Figures>, tcp: Option<&Figures>) -> Vec<Row> {
    let sides = [snow, tls, tcp];
    let cost = |f: Option<&Figures>, phase: &str| f.and_then(|f| f.costs.get(phase).cloned());
    let mut rows = Vec::new();
    for (phase, label) in PHASES {
        if sides.iter().all(|f| cost(*f, phase).is_none()) {
            continue;
        }
        let show = |c: &Cost| format!("{} + {}{}", us(c.cpu_per_msg(0)), us(c.cpu_per_msg(1)), coarse_note(c));
        let total = |f| cost(f, phase).filter(|c| !c.coarse()).map(|c| c.total_cpu_per_msg().as_secs_f64());
        let mut ratios = Vec::new();
        push_ratio(&mut ratios, "of Erlang TLS", ratio(total(snow), total(tls)));
        push_ratio(&mut ratios, "of Erlang TCP", ratio(total(snow), total(tcp)));
        rows.push(Row {
            name: format!("CPU per message (client + server): {label}"),
            cells: sides.iter().map(|f| cell(cost(*f, phase).as_ref(), show)).collect(),
            ratios,
            target: String::new(),
        });
    }
    if sides.iter().any(|f| cost(*f, "idle").is_some()) {
        let show = |c: &Cost| {
            format!(
                "{:.2}% + {:.2}% over {:.0} s",
                c.core_share(0) * 100.0,
                c.core_share(1) * 100.0,
                c.elapsed.as_secs_f64()
            )
        };
        let worst = |f| cost(f, "idle").map(|c| c.core_share(0).max(c.core_share(1)));
        let mut ratios = Vec::new();
        push_ratio(&mut ratios, "of Erlang TCP (busier node)", ratio(worst(snow), worst(tcp)));
        rows.push(Row {
            name: "idle CPU of a connected node, % of one core (client + server)".into(),
            cells: sides.iter().map(|f| cell(cost(*f, "idle").as_ref(), show)).collect(),
            ratios,
            target: "< 0.5% per node".into(),
        });
    }
    for (phase, label) in [
        ("tput_64", "bytes on the wire per 64 B message, streamed (sender to receiver; acks back)"),
        ("rtt", "bytes on the wire per small message sent alone (round trip: request; reply)"),
    ] {
        if sides.iter().all(|f| cost(*f, phase).is_none()) {
            continue;
        }
        let show = |c: &Cost| format!("{:.1} B; {:.1} B", c.bytes_out_per_msg(), c.bytes_in_per_msg());
        let out = |f| cost(f, phase).map(|c| c.bytes_out_per_msg());
        let mut ratios = Vec::new();
        push_ratio(&mut ratios, "of Erlang TLS", ratio(out(snow), out(tls)));
        push_ratio(&mut ratios, "of Erlang TCP", ratio(out(snow), out(tcp)));
        rows.push(Row {
            name: label.into(),
            cells: sides.iter().map(|f| cell(cost(*f, phase).as_ref(), show)).collect(),
            ratios,
            target: String::new(),
        });
    }
    rows
}

/// The cluster bench's rows: Snow's global registry and groups against Erlang's `global` and `pg`
/// over TLS (ratios are Snow's figure over Erlang's: below 1 is faster for times, above 1 is
/// more for rates).
pub fn cluster_rows(snow: Option<&ClusterFigures>, erlang: Option<&ClusterFigures>) -> Vec<Row> {
    let sides = [snow, erlang];
    let mut rows = Vec::new();
    let spread = |name: &str, get: fn(&ClusterFigures) -> Spread, target: &str| {
        let mut ratios = Vec::new();
        let p50 = |f: Option<&ClusterFigures>| f.map(|f| get(f).p50.as_secs_f64());
        let p99 = |f: Option<&ClusterFigures>| f.map(|f| get(f).p99.as_secs_f64());
        push_ratio(&mut ratios, "median", ratio(p50(snow), p50(erlang)));
        push_ratio(&mut ratios, "p99", ratio(p99(snow), p99(erlang)));
        Row {
            name: name.into(),
            cells: sides.iter().map(|f| cell(*f, |f| format!("{} / {}", us(get(f).p50), us(get(f).p99)))).collect(),
            ratios,
            target: target.into(),
        }
    };
    rows.push(spread("register_name returns (median / p99)", |f| f.register_return, "≤ 0.1x of global"));
    rows.push(spread("name visible on all 4 other nodes (median / p99)", |f| f.register_visible, "< 1x of global"));
    let mut ratios = Vec::new();
    let whereis = |f: Option<&ClusterFigures>| f.map(|f| f.whereis.as_secs_f64());
    push_ratio(&mut ratios, "", ratio(whereis(snow), whereis(erlang)));
    rows.push(Row {
        name: "whereis_name of a registered name".into(),
        cells: sides.iter().map(|f| cell(*f, |f| format!("{} ns", f.whereis.as_nanos()))).collect(),
        ratios,
        target: String::new(),
    });
    rows.push(spread("join returns (median / p99)", |f| f.join_return, ""));
    rows.push(spread("member visible on all 4 other nodes (median / p99)", |f| f.join_visible, ""));
    let per_s = |f: &ClusterFigures| f.broadcast.0 as f64 / f.broadcast.1.as_secs_f64().max(1e-9);
    let mut ratios = Vec::new();
    push_ratio(&mut ratios, "", ratio(snow.map(per_s), erlang.map(per_s)));
    rows.push(Row {
        name: "broadcast to 1,000 members on 3 nodes".into(),
        cells: sides.iter().map(|f| cell(*f, |f| format!("{:.0} deliveries/s", per_s(f)))).collect(),
        ratios,
        target: "> 1x of Erlang TLS".into(),
    });
    let call = |f: &ClusterFigures| match f.call {
        Some(c) => format!("{:.0} calls/s, {} / {}", c.per_s(), us(c.p50), us(c.p99)),
        None => "not measured (no calls in the workload)".into(),
    };
    let mut ratios = Vec::new();
    let p50 = |f: Option<&ClusterFigures>| f.and_then(|f| f.call).map(|c| c.p50.as_secs_f64());
    push_ratio(&mut ratios, "median", ratio(p50(snow), p50(erlang)));
    rows.push(Row {
        name: "call, 16 callers: calls/s, median / p99 (erpc:call)".into(),
        cells: sides.iter().map(|f| cell(*f, call)).collect(),
        ratios,
        target: "latency < 1x of Erlang TLS".into(),
    });
    for (phase, label) in [("register", "per registration"), ("join", "per join"), ("broadcast", "per delivery")] {
        let cost = |f: Option<&ClusterFigures>| f.and_then(|f| f.costs.get(phase).cloned());
        if sides.iter().all(|f| cost(*f).is_none()) {
            continue;
        }
        let mut ratios = Vec::new();
        let total = |f| cost(f).filter(|c| !c.coarse()).map(|c| c.total_cpu_per_msg().as_secs_f64());
        push_ratio(&mut ratios, "", ratio(total(snow), total(erlang)));
        rows.push(Row {
            name: format!("CPU of all 5 nodes {label} (lead's share)"),
            cells: sides
                .iter()
                .map(|f| {
                    cell(cost(*f).as_ref(), |c: &Cost| {
                        format!("{} ({}){}", us(c.total_cpu_per_msg()), us(c.cpu_per_msg(0)), coarse_note(c))
                    })
                })
                .collect(),
            ratios,
            target: String::new(),
        });
    }
    let mut ratios = Vec::new();
    let mesh = |f: Option<&ClusterFigures>| f.map(|f| f.mesh.as_secs_f64());
    push_ratio(&mut ratios, "", ratio(mesh(snow), mesh(erlang)));
    rows.push(Row {
        name: "full mesh of 5 nodes (the lead connects to 4)".into(),
        cells: sides.iter().map(|f| cell(*f, |f| ms(f.mesh))).collect(),
        ratios,
        target: String::new(),
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::{Flood, Rate};
    use std::collections::BTreeMap;

    fn figures(scale: f64) -> Figures {
        let d = |ns: f64| Duration::from_nanos((ns * scale) as u64);
        let mut costs = BTreeMap::new();
        costs.insert(
            "tput_64".to_owned(),
            Cost {
                messages: 1000,
                elapsed: d(1e9),
                cpu: vec![d(2e6), d(1e6)],
                bytes_out: (100_000.0 * scale) as u64,
                bytes_in: 500,
                tick: Duration::from_micros(10),
            },
        );
        costs.insert(
            "idle".to_owned(),
            Cost {
                messages: 0,
                elapsed: Duration::from_secs(10),
                cpu: vec![d(1e7), d(2e7)],
                bytes_out: 0,
                bytes_in: 0,
                tick: Duration::from_millis(10),
            },
        );
        Figures {
            connect_first: d(2e6),
            connect_median: d(1e6),
            throughput: crate::figures::SIZES
                .iter()
                .map(|&size| Throughput { size, messages: 1000, elapsed: d(1e9) })
                .collect(),
            rtt_median: d(5e4),
            rtt_p99: d(9e4),
            flood: Flood { messages: 1000, elapsed: d(1e9), rss_before_kib: 10240, peak_kib: 20480 },
            calls: vec![Calls { callers: 16, calls: 1000, elapsed: d(1e9), p50: d(4e5), p99: d(9e5) }],
            fanin: Some(Rate { messages: 100, elapsed: d(1e6) }),
            costs,
        }
    }

    #[test]
    fn rows_compare_each_side_and_render_as_markdown() {
        let (snow, tls) = (figures(1.0), figures(2.0));
        let rows = dist_rows(Some(&snow), Some(&tls), None);
        let t = render(&["Snow (TLS)", "Erlang TLS", "Erlang TCP"], &rows);
        assert!(t.contains("| send 64 B | 1000 msg/s, 0.1 MB/s | 500 msg/s, 0.0 MB/s | - | 2.00x TLS |"), "{t}");
        assert!(t.contains("| 1000 msg/s, peak RSS 20.0 MiB (+10.0 MiB) |"), "{t}");
        assert!(
            t.contains("| request/reply, 16 callers: calls/s | 1000 calls/s | 500 calls/s | - | 2.00x TLS |"),
            "{t}"
        );
        assert!(t.contains("| request/reply, 16 callers: latency p50 / p99 | 400.0 us / 900.0 us |"), "{t}");
        assert!(t.contains("| fan-in: structured messages, 4 senders to 1 | 100000 msg/s |"), "{t}");
        let costs = render(&["Snow (TLS)", "Erlang TLS", "Erlang TCP"], &cost_rows(Some(&snow), Some(&tls), None));
        assert!(costs.contains("| CPU per message (client + server): send 64 B | 2.0 us + 1.0 us | 4.0 us + 2.0 us | - | 0.50x of Erlang TLS |"), "{costs}");
        assert!(costs.contains("| 0.10% + 0.20% over 10 s |"), "{costs}");
        assert!(costs.contains("per 64 B message, streamed (sender to receiver; acks back) | 100.0 B; 0.5 B | 200.0 B; 0.5 B | - | 0.50x of Erlang TLS |"), "{costs}");
        let mut rough = snow.clone();
        if let Some(c) = rough.costs.get_mut("tput_64") {
            c.tick = Duration::from_millis(10);
        }
        let costs = render(&["Snow (TLS)", "Erlang TLS", "Erlang TCP"], &cost_rows(Some(&rough), Some(&tls), None));
        assert!(costs.contains("| CPU per message (client + server): send 64 B | 2.0 us + 1.0 us (coarse: 0 ticks in all) | 4.0 us + 2.0 us | - | - |"), "{costs}");
    }

    #[test]
    fn cluster_rows_compare_with_erlang_and_leave_call_to_the_side_that_has_it() {
        let spread = |us: u64| Spread { p50: Duration::from_micros(us), p99: Duration::from_micros(us * 3) };
        let f = |us: u64, call: Option<Calls>| ClusterFigures {
            mesh: Duration::from_millis(us),
            register_return: spread(us),
            register_visible: spread(us * 2),
            whereis: Duration::from_nanos(us * 10),
            join_return: spread(us),
            join_visible: spread(us * 2),
            broadcast: (100_000, Duration::from_micros(us * 1000)),
            call,
            costs: BTreeMap::new(),
        };
        let call = Calls {
            callers: 16,
            calls: 1000,
            elapsed: Duration::from_secs(1),
            p50: Duration::from_micros(200),
            p99: Duration::from_micros(900),
        };
        let (snow, erlang) = (f(10, None), f(100, Some(call)));
        let t = render(&["Snow (TLS)", "Erlang TLS"], &cluster_rows(Some(&snow), Some(&erlang)));
        assert!(t.contains("| register_name returns (median / p99) | 10.0 us / 30.0 us | 100.0 us / 300.0 us | 0.10x median, 0.10x p99 | ≤ 0.1x of global |"), "{t}");
        assert!(
            t.contains(
                "| broadcast to 1,000 members on 3 nodes | 10000000 deliveries/s | 1000000 deliveries/s | 10.00x |"
            ),
            "{t}"
        );
        assert!(
            t.contains("| not measured (no calls in the workload) | 1000 calls/s, 200.0 us / 900.0 us | - |"),
            "{t}"
        );
    }

    #[test]
    fn summary_gives_each_run_and_the_range_of_each_ratio() {
        let run = |r: f64| {
            vec![Row {
                name: "send 64 B".into(),
                cells: vec![],
                ratios: vec![("TLS".into(), r), ("TCP".into(), r * 2.0)],
                target: "≥ 4x TLS".into(),
            }]
        };
        let s = summary(&[run(3.0), run(5.5), run(4.0)]);
        assert!(s.contains("| send 64 B (TLS) | 3.00, 5.50, 4.00 | 3.00-5.50x | ≥ 4x TLS |"), "{s}");
        assert!(s.contains("| send 64 B (TCP) | 6.00, 11.00, 8.00 | 6.00-11.00x |"), "{s}");
    }
}
