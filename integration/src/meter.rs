//! What a workload costs the nodes, measured from outside them the same way for Snow and Erlang:
//! CPU time (user + sys) of each node's OS process from `/proc/<pid>/stat`, and the bytes its TCP
//! connections carried from the kernel's counters (`ss -tinp`: `bytes_acked` sent and
//! `bytes_received`, TCP payload, so TLS records and frame headers included, IP/TCP headers not).
//!
//! A bench client brackets each timed workload with phase lines on stdout, and waits for `GO` on
//! stdin after each, so the harness samples while nothing runs ([`run_phased`]):
//!
//! ```text
//! PHASE <name>              (harness samples, answers GO; the client starts timing)
//! PHASE_END <name> <msgs>   (harness samples, answers GO)
//! ```

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::child::{ChildProc, Line};

/// CPU time and traffic of the nodes at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// CPU time (user + sys) of each node, in the order the nodes were given.
    pub cpu: Vec<Duration>,
    /// Bytes the first node sent on its TCP connections (other than to the name daemon).
    pub bytes_out: u64,
    /// Bytes the first node received on those connections.
    pub bytes_in: u64,
}

/// What one phase cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Cost {
    /// Messages (or calls, or operations) the client counted in the phase.
    pub messages: u64,
    /// Wall-clock time between the two samples.
    pub elapsed: Duration,
    /// CPU time each node used in the phase (the nodes' order).
    pub cpu: Vec<Duration>,
    /// Bytes the first node sent.
    pub bytes_out: u64,
    /// Bytes the first node received.
    pub bytes_in: u64,
    /// The CPU clock's tick (`/proc` counts CPU time in ticks, 10 ms at the usual 100 Hz).
    pub tick: Duration,
}

/// Below this many ticks of CPU time in all nodes together, a phase's CPU figures are too coarse
/// to compare (one tick more or less moves them by 5% or more).
pub const MIN_TICKS: u32 = 20;

impl Cost {
    /// Whether the CPU time measured is too small for the tick to be negligible ([`MIN_TICKS`]).
    pub fn coarse(&self) -> bool {
        self.cpu.iter().sum::<Duration>() < self.tick * MIN_TICKS
    }

    /// CPU time per message of node `i` (zero for a phase without messages).
    pub fn cpu_per_msg(&self, i: usize) -> Duration {
        let cpu = self.cpu.get(i).copied().unwrap_or_default();
        if self.messages == 0 {
            Duration::ZERO
        } else {
            cpu / self.messages.min(u32::MAX as u64) as u32
        }
    }

    /// CPU time per message of all nodes together.
    pub fn total_cpu_per_msg(&self) -> Duration {
        (0..self.cpu.len()).map(|i| self.cpu_per_msg(i)).sum()
    }

    /// Share of one core node `i` used over the phase (0.01 = 1%).
    pub fn core_share(&self, i: usize) -> f64 {
        self.cpu.get(i).map_or(0.0, |c| c.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9))
    }

    /// Bytes the first node sent per message.
    pub fn bytes_out_per_msg(&self) -> f64 {
        self.bytes_out as f64 / self.messages.max(1) as f64
    }

    /// Bytes the first node received per message.
    pub fn bytes_in_per_msg(&self) -> f64 {
        self.bytes_in as f64 / self.messages.max(1) as f64
    }
}

/// Samples nodes by OS pid. Errors name the pid and what could not be read.
pub struct Meter {
    pids: Vec<u32>,
    exclude_port: Option<u16>,
    ticks_per_s: u64,
}

impl Meter {
    /// A meter for `pids` (the first is the one whose connections are counted); connections to or
    /// from `exclude_port` (the name daemon's) are left out of the byte counts.
    pub fn new(pids: Vec<u32>, exclude_port: Option<u16>) -> Meter {
        Meter { pids, exclude_port, ticks_per_s: clock_ticks_per_s() }
    }

    /// Reads every node's CPU time and the first node's byte counters.
    pub fn sample(&self) -> Result<Sample, String> {
        let cpu = self
            .pids
            .iter()
            .map(|&pid| cpu_ticks(pid).map(|t| Duration::from_secs_f64(t as f64 / self.ticks_per_s as f64)))
            .collect::<Result<Vec<_>, String>>()?;
        let (bytes_out, bytes_in) = match self.pids.first() {
            Some(&pid) => tcp_bytes(pid, self.exclude_port)?,
            None => (0, 0),
        };
        Ok(Sample { cpu, bytes_out, bytes_in })
    }

    /// One tick of the CPU clock.
    pub fn tick(&self) -> Duration {
        Duration::from_secs(1) / self.ticks_per_s.clamp(1, u32::MAX as u64) as u32
    }
}

/// The clock ticks per second `/proc/<pid>/stat` counts in (`getconf CLK_TCK`; 100, the value on
/// every Linux architecture this runs on, if getconf is missing).
pub fn clock_ticks_per_s() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// User + system clock ticks of process `pid` (all its threads), from `/proc/<pid>/stat`.
pub fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    parse_stat_ticks(&stat).ok_or_else(|| format!("{path}: unexpected format: {stat}"))
}

/// CPU time of process `pid` in nanoseconds, summed over its threads alive now (the first field
/// of `/proc/<pid>/task/*/schedstat`: the scheduler's own account of time on a CPU, not sampled
/// at clock ticks). Threads that have exited are not counted, so compare two readings only over a
/// window in which the process's threads live on (an idle sample), where a tick-based reading
/// ([`cpu_ticks`]) could not tell 0 from 10 ms.
pub fn cpu_ns(pid: u32) -> Result<u64, String> {
    let dir = format!("/proc/{pid}/task");
    let tasks = std::fs::read_dir(&dir).map_err(|e| format!("cannot read {dir}: {e}"))?;
    let mut total = 0u64;
    for task in tasks {
        let path = task.map_err(|e| format!("{dir}: {e}"))?.path().join("schedstat");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                total +=
                    parse_schedstat_ns(&text).ok_or_else(|| format!("{}: unexpected format: {text}", path.display()))?
            }
            // The thread exited between the listing and the read.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        }
    }
    Ok(total)
}

/// The time on a CPU (ns), the first of a `schedstat` line's three fields.
fn parse_schedstat_ns(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line; the command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Bytes sent (acknowledged by the peer) and received on the established TCP connections of
/// process `pid`, except those with `exclude_port` at either end.
pub fn tcp_bytes(pid: u32, exclude_port: Option<u16>) -> Result<(u64, u64), String> {
    let out = Command::new("ss")
        .args(["-tinpH", "state", "established"])
        .output()
        .map_err(|e| format!("cannot run ss (iproute2) to count bytes on the wire: {e}"))?;
    if !out.status.success() {
        return Err(format!("ss failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(parse_ss(&String::from_utf8_lossy(&out.stdout), pid, exclude_port))
}

/// Sums `bytes_acked` / `bytes_received` of the sockets of `pid` in `ss -tinpH` output: a line per
/// socket (`recv-q send-q local peer users:((..,pid=N,..))`) followed by an indented line of
/// counters.
fn parse_ss(text: &str, pid: u32, exclude_port: Option<u16>) -> (u64, u64) {
    let owner = format!("pid={pid},");
    let (mut sent, mut received) = (0, 0);
    let mut counting = false;
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let port = |w: Option<&&str>| w.and_then(|a| a.rsplit(':').next()).and_then(|p| p.parse::<u16>().ok());
            let excluded = exclude_port.is_some_and(|x| port(words.get(2)) == Some(x) || port(words.get(3)) == Some(x));
            counting = line.contains(&owner) && !excluded;
            continue;
        }
        if counting {
            for word in line.split_whitespace() {
                if let Some(v) = word.strip_prefix("bytes_acked:") {
                    sent += v.parse::<u64>().unwrap_or(0);
                } else if let Some(v) = word.strip_prefix("bytes_received:") {
                    received += v.parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    (sent, received)
}

/// Reads `client`'s output until it ends or `timeout` passes, answering its phase lines: samples
/// `meter` at each `PHASE` and `PHASE_END`, replies `GO`. Returns the stdout lines and the cost of
/// each phase by name; `Err` if a sample fails or the client exits unsuccessfully.
pub fn run_phased(
    client: &mut ChildProc,
    meter: &Meter,
    timeout: Duration,
) -> Result<(Vec<String>, BTreeMap<String, Cost>), String> {
    let deadline = Instant::now() + timeout;
    let (mut lines, mut costs) = (Vec::new(), BTreeMap::new());
    let mut open: Option<(String, Sample, Instant)> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let transcript = client.transcript();
            return Err(format!("{}: no end after {timeout:?}:\n{transcript}", client.label));
        }
        let line = match client.expect(left, |_| true) {
            Ok(Line::Out(line)) => line,
            Ok(Line::Err(_)) => continue,
            Err(e) if e.contains("output ended") => break,
            Err(e) => return Err(e),
        };
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("PHASE"), Some(name), None) => {
                let sample = meter.sample()?;
                open = Some((name.to_owned(), sample, Instant::now()));
                client.send_line("GO").map_err(|e| format!("{}: cannot answer GO: {e}", client.label))?;
            }
            (Some("PHASE_END"), Some(name), Some(count)) => {
                let end = meter.sample()?;
                let elapsed_end = Instant::now();
                let messages = count.parse().map_err(|_| format!("malformed phase line: {line}"))?;
                match open.take() {
                    Some((started, start, at)) if started == name => {
                        let mut c = cost(&start, &end, messages, elapsed_end - at);
                        c.tick = meter.tick();
                        costs.insert(name.to_owned(), c);
                    }
                    _ => return Err(format!("{}: PHASE_END {name} without its PHASE", client.label)),
                }
                client.send_line("GO").map_err(|e| format!("{}: cannot answer GO: {e}", client.label))?;
            }
            _ => lines.push(line),
        }
    }
    let (_, status) = client.finish(deadline.saturating_duration_since(Instant::now()));
    if !status.is_some_and(|s| s.success()) {
        let transcript = client.transcript();
        return Err(format!("{} failed ({status:?}):\n{transcript}", client.label));
    }
    Ok((lines, costs))
}

fn cost(start: &Sample, end: &Sample, messages: u64, elapsed: Duration) -> Cost {
    Cost {
        messages,
        elapsed,
        cpu: end.cpu.iter().zip(&start.cpu).map(|(b, a)| b.saturating_sub(*a)).collect(),
        bytes_out: end.bytes_out.saturating_sub(start.bytes_out),
        bytes_in: end.bytes_in.saturating_sub(start.bytes_in),
        tick: Duration::from_millis(10),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_gives_its_first_field_and_this_process_has_spent_cpu() {
        assert_eq!(parse_schedstat_ns("176696282 10450477 369\n"), Some(176_696_282));
        assert_eq!(parse_schedstat_ns(""), None);
        let spent = cpu_ns(std::process::id()).unwrap();
        let until = std::time::Instant::now() + Duration::from_millis(20);
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
        let later = cpu_ns(std::process::id()).unwrap();
        assert!(later >= spent + 10_000_000, "20 ms of spinning counted {} ns", later - spent);
    }

    #[test]
    fn stat_ticks_skip_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (we (ird) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 37 5 0 0 20 0 3 0 12345 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(42));
        assert_eq!(parse_stat_ticks("4242 (short) S 1"), None);
        assert!(cpu_ticks(std::process::id()).is_ok());
    }

    #[test]
    fn ss_counts_only_the_pids_sockets_outside_the_daemon_port() {
        let text = "0 0 127.0.0.1:40000 127.0.0.1:9100 users:((\"beam.smp\",pid=77,fd=20))\n\
                    \t cubic bytes_sent:1500 bytes_acked:1400 bytes_received:300 segs_out:9\n\
                    0 0 127.0.0.1:40001 127.0.0.1:4369 users:((\"beam.smp\",pid=77,fd=21))\n\
                    \t cubic bytes_acked:99 bytes_received:99\n\
                    0 0 127.0.0.1:9100 127.0.0.1:40000 users:((\"beam.smp\",pid=770,fd=20))\n\
                    \t cubic bytes_acked:300 bytes_received:1400\n";
        assert_eq!(parse_ss(text, 77, Some(4369)), (1400, 300));
        assert_eq!(parse_ss(text, 77, None), (1499, 399));
        assert_eq!(parse_ss(text, 770, Some(4369)), (300, 1400));
    }

    #[test]
    fn cost_per_message_and_core_share() {
        let a = Sample { cpu: vec![Duration::from_millis(10), Duration::from_millis(20)], bytes_out: 100, bytes_in: 0 };
        let b =
            Sample { cpu: vec![Duration::from_millis(30), Duration::from_millis(20)], bytes_out: 1100, bytes_in: 50 };
        let c = cost(&a, &b, 10, Duration::from_secs(1));
        assert_eq!(c.cpu_per_msg(0), Duration::from_millis(2));
        assert_eq!(c.cpu_per_msg(1), Duration::ZERO);
        assert_eq!(c.total_cpu_per_msg(), Duration::from_millis(2));
        assert!((c.core_share(0) - 0.02).abs() < 1e-9);
        assert_eq!(c.bytes_out_per_msg(), 100.0);
        assert_eq!(c.bytes_in_per_msg(), 5.0);
        assert!(c.coarse(), "20 ms is 2 ticks of 10 ms, under {MIN_TICKS}");
        let long = Sample { cpu: vec![Duration::from_millis(300), Duration::from_millis(20)], ..b.clone() };
        assert!(!cost(&a, &long, 10, Duration::from_secs(1)).coarse(), "290 ms is 29 ticks");
    }
}
