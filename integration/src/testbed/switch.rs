//! The testbed's switch: the decisions of the user-space Ethernet switch that joins the testbed's
//! hosts (the `snow-testbed-switch` binary does the frame I/O). The kernels this runs on may have
//! no `netem` qdisc, so loss, latency, reordering and cuts happen here, per direction of each
//! host pair, and every decision is counted so a test can check that it really happened.
//!
//! Frames are forwarded by destination MAC: each host's interface has the fixed address
//! [`host_mac`], so there is nothing to learn; broadcast and multicast go to every other host.
//! The switch recomputes IPv4 TCP and UDP checksums of the frames it forwards, because frames
//! read from a veth carry the partial checksum of checksum offload, which the receiving host
//! would otherwise reject.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The most hosts one switch joins (host numbers 1 to this).
pub const MAX_HOSTS: usize = 32;

/// An Ethernet address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Whether this is a broadcast or multicast address (the group bit).
    pub fn is_group(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl std::str::FromStr for Mac {
    type Err = String;
    fn from_str(text: &str) -> Result<Mac, String> {
        let bytes: Vec<u8> = text
            .split(':')
            .map(|b| u8::from_str_radix(b, 16))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("bad MAC {text}: {e}"))?;
        <[u8; 6]>::try_from(bytes).map(Mac).map_err(|_| format!("bad MAC {text}: expected six bytes"))
    }
}

/// The address of host `n`'s interface (locally administered, `02:73:6e:00:00:n`).
pub fn host_mac(n: usize) -> Mac {
    Mac([0x02, 0x73, 0x6e, 0, 0, n as u8])
}

/// The destination address of an Ethernet frame (`None` if it is too short to be one).
pub fn dst_mac(frame: &[u8]) -> Option<Mac> {
    frame.get(0..6).and_then(|b| b.try_into().ok()).map(Mac)
}

/// The source address of an Ethernet frame.
pub fn src_mac(frame: &[u8]) -> Option<Mac> {
    frame.get(6..12).and_then(|b| b.try_into().ok()).map(Mac)
}

/// What happens to frames going one way between two hosts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Shaping {
    /// Every frame is dropped (a partition).
    pub cut: bool,
    /// Probability (0 to 1) that a frame is dropped.
    pub loss: f64,
    /// How long every frame is held before it goes out.
    pub delay: Duration,
    /// Probability (0 to 1) that a frame is held for an extra [`Shaping::reorder_extra`], so that
    /// frames sent after it overtake it.
    pub reorder: f64,
}

impl Shaping {
    /// The extra hold of a reordered frame: the link's delay again, or 1 ms on a link without one.
    pub fn reorder_extra(&self) -> Duration {
        if self.delay.is_zero() {
            Duration::from_millis(1)
        } else {
            self.delay
        }
    }

    /// Whether frames pass untouched and at once.
    pub fn is_plain(&self) -> bool {
        *self == Shaping::default()
    }
}

/// Why the switch did not forward a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropCause {
    /// The link is cut.
    Cut,
    /// Random loss.
    Loss,
}

/// The switch's decision for one frame on one link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forward now.
    Now,
    /// Forward after this hold; `reordered` if the hold includes the reordering extra.
    Later {
        /// How long to hold the frame.
        hold: Duration,
        /// Whether the frame was picked for reordering.
        reordered: bool,
    },
    /// Drop it.
    Drop(DropCause),
}

/// The shaping of every direction of every host pair.
#[derive(Clone, Debug)]
pub struct Rules {
    hosts: usize,
    links: Vec<Shaping>,
}

/// Hosts a command applies to: one (1-based) or all (`*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hosts {
    /// Host number n (1-based).
    One(usize),
    /// Every host.
    All,
}

impl Rules {
    /// Plain links between `hosts` hosts.
    pub fn new(hosts: usize) -> Rules {
        Rules { hosts, links: vec![Shaping::default(); hosts * hosts] }
    }

    /// The number of hosts.
    pub fn hosts(&self) -> usize {
        self.hosts
    }

    /// The shaping of frames from host `src` to host `dst` (0-based).
    pub fn link(&self, src: usize, dst: usize) -> Shaping {
        self.links[src * self.hosts + dst]
    }

    /// Changes the direction `src` to `dst` with `change`, for every pair the selectors cover
    /// (never a host to itself).
    pub fn update(&mut self, src: Hosts, dst: Hosts, change: impl Fn(&mut Shaping)) {
        for s in 0..self.hosts {
            for d in 0..self.hosts {
                if s != d && covers(src, s) && covers(dst, d) {
                    change(&mut self.links[s * self.hosts + d]);
                }
            }
        }
    }

    /// The verdict for one frame from `src` to `dst`; `random` gives uniform numbers in [0, 1).
    pub fn decide(&self, src: usize, dst: usize, mut random: impl FnMut() -> f64) -> Verdict {
        let link = self.link(src, dst);
        if link.cut {
            return Verdict::Drop(DropCause::Cut);
        }
        if link.is_plain() {
            return Verdict::Now;
        }
        if link.loss > 0.0 && random() < link.loss {
            return Verdict::Drop(DropCause::Loss);
        }
        let reordered = link.reorder > 0.0 && random() < link.reorder;
        let hold = link.delay + if reordered { link.reorder_extra() } else { Duration::ZERO };
        if hold.is_zero() {
            Verdict::Now
        } else {
            Verdict::Later { hold, reordered }
        }
    }
}

fn covers(hosts: Hosts, index: usize) -> bool {
    match hosts {
        Hosts::All => true,
        Hosts::One(n) => n == index + 1,
    }
}

/// One line of the switch's control protocol (stdin), each answered with one line.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `set SRC DST key=value...`: change the direction SRC to DST (`loss=0.01`, `delay_ms=5`,
    /// `reorder=0.1`, `cut=1`); answered `OK`.
    Set {
        /// Sending host(s).
        src: Hosts,
        /// Receiving host(s).
        dst: Hosts,
        /// The changes, in order.
        changes: Vec<(String, f64)>,
    },
    /// `cut A B`: both directions between A and B drop everything (`cut A *` isolates A).
    Cut(Hosts, Hosts),
    /// `heal A B`: both directions between A and B forward again (shaping other than cuts stays).
    Heal(Hosts, Hosts),
    /// `clear`: every link plain again.
    Clear,
    /// `stats`: answered with the counters (`STATS received=.. forwarded=..`).
    Stats,
}

/// Parses one control line for a switch of `hosts` hosts.
pub fn parse_command(line: &str, hosts: usize) -> Result<Command, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let host = |w: &str| -> Result<Hosts, String> {
        if w == "*" {
            return Ok(Hosts::All);
        }
        match w.parse::<usize>() {
            Ok(n) if (1..=hosts).contains(&n) => Ok(Hosts::One(n)),
            _ => Err(format!("bad host {w}: expected 1 to {hosts} or *")),
        }
    };
    match words.as_slice() {
        ["set", src, dst, changes @ ..] if !changes.is_empty() => {
            let changes = changes
                .iter()
                .map(|c| {
                    let (key, value) =
                        c.split_once('=').ok_or_else(|| format!("bad change {c}: expected key=value"))?;
                    let value: f64 = value.parse().map_err(|e| format!("bad value in {c}: {e}"))?;
                    let ok = match key {
                        "loss" | "reorder" | "cut" => (0.0..=1.0).contains(&value),
                        "delay_ms" => (0.0..=10_000.0).contains(&value),
                        _ => return Err(format!("unknown key {key}: expected loss, delay_ms, reorder or cut")),
                    };
                    if ok {
                        Ok((key.to_owned(), value))
                    } else {
                        Err(format!("{c} is out of range"))
                    }
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(Command::Set { src: host(src)?, dst: host(dst)?, changes })
        }
        ["cut", a, b] => Ok(Command::Cut(host(a)?, host(b)?)),
        ["heal", a, b] => Ok(Command::Heal(host(a)?, host(b)?)),
        ["clear"] => Ok(Command::Clear),
        ["stats"] => Ok(Command::Stats),
        _ => Err(format!("unknown command {line:?}")),
    }
}

/// Applies a rule-changing command (everything but `stats`).
pub fn apply(rules: &mut Rules, command: &Command) {
    match command {
        Command::Set { src, dst, changes } => rules.update(*src, *dst, |link| {
            for (key, value) in changes {
                match key.as_str() {
                    "loss" => link.loss = *value,
                    "reorder" => link.reorder = *value,
                    "cut" => link.cut = *value != 0.0,
                    "delay_ms" => link.delay = Duration::from_secs_f64(value / 1000.0),
                    _ => {}
                }
            }
        }),
        Command::Cut(a, b) | Command::Heal(a, b) => {
            let cut = matches!(command, Command::Cut(..));
            rules.update(*a, *b, |link| link.cut = cut);
            rules.update(*b, *a, |link| link.cut = cut);
        }
        Command::Clear => *rules = Rules::new(rules.hosts),
        Command::Stats => {}
    }
}

/// What the switch did, frame by frame.
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames that came from a host.
    pub received: AtomicU64,
    /// Frame copies sent to a host.
    pub forwarded: AtomicU64,
    /// Frame copies dropped on a cut link.
    pub cut: AtomicU64,
    /// Frame copies dropped by random loss.
    pub lost: AtomicU64,
    /// Frame copies held before forwarding.
    pub delayed: AtomicU64,
    /// Frame copies forwarded after a frame that came in later on the same link.
    pub reordered: AtomicU64,
    /// Frames for an address that is no host's.
    pub unknown: AtomicU64,
    /// Sends that failed.
    pub send_errors: AtomicU64,
}

impl Counters {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The `STATS ...` answer line.
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "STATS received={} forwarded={} cut={} lost={} delayed={} reordered={} unknown={} send_errors={}",
            get(&self.received),
            get(&self.forwarded),
            get(&self.cut),
            get(&self.lost),
            get(&self.delayed),
            get(&self.reordered),
            get(&self.unknown),
            get(&self.send_errors)
        )
    }
}

/// A `STATS` line read back: counter name to value.
pub fn parse_stats(line: &str) -> Result<Vec<(String, u64)>, String> {
    let rest = line.strip_prefix("STATS ").ok_or_else(|| format!("not a STATS line: {line}"))?;
    rest.split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').ok_or_else(|| format!("bad counter {kv}"))?;
            Ok((k.to_owned(), v.parse().map_err(|e| format!("bad counter {kv}: {e}"))?))
        })
        .collect()
}

/// A frame held for later, on its way to host `dst` (0-based).
#[derive(Debug)]
pub struct Held {
    /// Destination host (0-based).
    pub dst: usize,
    /// Source host (0-based).
    pub src: usize,
    /// Arrival order on this link (per `src`, `dst`).
    pub seq: u64,
    /// The frame.
    pub frame: Vec<u8>,
}

/// Frames waiting for their time, released in time order (ties in arrival order).
#[derive(Default)]
pub struct HoldQueue {
    heap: Mutex<BinaryHeap<Reverse<(Instant, u64, HeldBox)>>>,
    arrivals: AtomicU64,
    ready: Condvar,
}

/// [`Held`] ordered by nothing (the queue orders by time and arrival).
#[derive(Debug)]
struct HeldBox(Held);

impl PartialEq for HeldBox {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for HeldBox {}
impl PartialOrd for HeldBox {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HeldBox {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl HoldQueue {
    /// Holds `held` until `due`.
    pub fn push(&self, due: Instant, held: Held) {
        let order = self.arrivals.fetch_add(1, Ordering::Relaxed);
        let mut heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        heap.push(Reverse((due, order, HeldBox(held))));
        self.ready.notify_one();
    }

    /// Waits until at least one frame is due (or `max_wait` passes) and returns every due frame.
    pub fn take_due(&self, max_wait: Duration) -> Vec<Held> {
        let deadline = Instant::now() + max_wait;
        let mut heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            let next = heap.peek().map(|Reverse((due, _, _))| *due);
            match next {
                Some(due) if due <= now => break,
                _ if now >= deadline => return Vec::new(),
                Some(due) => {
                    heap = self.ready.wait_timeout(heap, due.min(deadline) - now).unwrap_or_else(|e| e.into_inner()).0
                }
                None => heap = self.ready.wait_timeout(heap, deadline - now).unwrap_or_else(|e| e.into_inner()).0,
            }
        }
        let now = Instant::now();
        let mut due = Vec::new();
        while heap.peek().is_some_and(|Reverse((at, _, _))| *at <= now) {
            if let Some(Reverse((_, _, HeldBox(held)))) = heap.pop() {
                due.push(held);
            }
        }
        due
    }
}

/// Counts frames that leave a link in another order than they came in.
pub struct ReorderCounter {
    hosts: usize,
    highest: Vec<Option<u64>>,
}

impl ReorderCounter {
    /// For a switch of `hosts` hosts.
    pub fn new(hosts: usize) -> ReorderCounter {
        ReorderCounter { hosts, highest: vec![None; hosts * hosts] }
    }

    /// Records that frame `seq` of link `src` to `dst` goes out now; whether a frame that came
    /// in after it already went out (it was overtaken).
    pub fn overtaken(&mut self, src: usize, dst: usize, seq: u64) -> bool {
        let highest = &mut self.highest[src * self.hosts + dst];
        match highest {
            Some(h) if *h > seq => true,
            _ => {
                *highest = Some(seq);
                false
            }
        }
    }
}

/// Recomputes the TCP or UDP checksum of an IPv4 frame in place (frames read from a veth carry
/// the partial checksum of checksum offload). Other frames are left alone. Returns whether the
/// frame was an IPv4 TCP or UDP frame.
pub fn fix_checksums(frame: &mut [u8]) -> bool {
    const ETH: usize = 14;
    if frame.len() < ETH + 20 || frame[12..14] != [0x08, 0x00] || frame[ETH] >> 4 != 4 {
        return false;
    }
    let ihl = usize::from(frame[ETH] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([frame[ETH + 2], frame[ETH + 3]]));
    let fragment = u16::from_be_bytes([frame[ETH + 6], frame[ETH + 7]]) & 0x3fff;
    if ihl < 20 || total < ihl || ETH + total > frame.len() || fragment != 0 {
        return false;
    }
    let protocol = frame[ETH + 9];
    let at = match protocol {
        6 => 16,
        17 => 6,
        _ => return false,
    };
    let (header, rest) = frame[ETH..ETH + total].split_at_mut(ihl);
    if rest.len() < at + 2 {
        return false;
    }
    rest[at] = 0;
    rest[at + 1] = 0;
    let mut sum: u64 = 0;
    for pair in header[12..20].chunks(2) {
        sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    sum += u64::from(protocol) + rest.len() as u64;
    let mut chunks = rest.chunks_exact(2);
    for pair in &mut chunks {
        sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let mut checksum = !(sum as u16);
    if protocol == 17 && checksum == 0 {
        checksum = 0xffff;
    }
    rest[at..at + 2].copy_from_slice(&checksum.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 TCP SYN from 10.231.0.1:40000 to 10.231.0.2:4369 (checksum computed by hand).
    fn syn(checksum: [u8; 2]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 231, 0, 1, 10, 231, 0, 2]);
        f.extend_from_slice(&[0x9c, 0x40, 0x11, 0x11, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff]);
        f.extend_from_slice(&checksum);
        f.extend_from_slice(&[0, 0]);
        f
    }

    #[test]
    fn a_partial_tcp_checksum_is_replaced_by_the_full_one() {
        // Pseudo-header: 0x0ae7+0x0001+0x0ae7+0x0002+6+20; TCP: 0x9c40+0x1111+1+0x5002+0xffff.
        let words: u32 = 0x0ae7 + 0x0001 + 0x0ae7 + 0x0002 + 6 + 20 + 0x9c40 + 0x1111 + 1 + 0x5002 + 0xffff;
        let mut folded = words;
        while folded >> 16 != 0 {
            folded = (folded & 0xffff) + (folded >> 16);
        }
        let expected = !(folded as u16);
        let mut frame = syn([0x12, 0x34]);
        assert!(fix_checksums(&mut frame));
        assert_eq!(&frame[14 + 20 + 16..14 + 20 + 18], &expected.to_be_bytes());
        // Idempotent: a correct checksum stays.
        let before = frame.clone();
        assert!(fix_checksums(&mut frame));
        assert_eq!(frame, before);
    }

    #[test]
    fn frames_that_are_not_ipv4_tcp_or_udp_are_left_alone() {
        let mut arp = vec![0xffu8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let before = arp.clone();
        assert!(!fix_checksums(&mut arp));
        assert_eq!(arp, before);
        let mut short = syn([0, 0]);
        short.truncate(30);
        assert!(!fix_checksums(&mut short));
    }

    #[test]
    fn commands_parse_and_change_only_the_links_they_name() {
        let mut rules = Rules::new(3);
        apply(&mut rules, &parse_command("set 1 * loss=0.01 delay_ms=5 reorder=0.25", 3).unwrap());
        assert_eq!(rules.link(0, 1).loss, 0.01);
        assert_eq!(rules.link(0, 2).delay, Duration::from_millis(5));
        assert!(rules.link(1, 0).is_plain(), "the other direction is untouched");
        apply(&mut rules, &parse_command("cut 2 *", 3).unwrap());
        assert!(rules.link(1, 0).cut && rules.link(0, 1).cut && rules.link(2, 1).cut && rules.link(1, 2).cut);
        assert!(!rules.link(0, 2).cut);
        apply(&mut rules, &parse_command("heal * *", 3).unwrap());
        assert!(!rules.link(1, 0).cut && rules.link(0, 1).loss == 0.01, "heal keeps other shaping");
        apply(&mut rules, &parse_command("clear", 3).unwrap());
        assert!(rules.link(0, 1).is_plain());
        for bad in ["set 4 1 loss=0.1", "set 1 2 loss=2", "set 1 2 jitter=1", "cut 1", "frobnicate", "set 0 1 cut=1"] {
            assert!(parse_command(bad, 3).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn verdicts_follow_the_link_and_the_random_draws() {
        let mut rules = Rules::new(2);
        assert_eq!(rules.decide(0, 1, || 0.0), Verdict::Now);
        apply(&mut rules, &parse_command("set 1 2 loss=0.5 delay_ms=5 reorder=0.5", 2).unwrap());
        assert_eq!(rules.decide(0, 1, || 0.4), Verdict::Drop(DropCause::Loss));
        let mut draws = [0.9, 0.9].into_iter();
        assert_eq!(
            rules.decide(0, 1, || draws.next().unwrap()),
            Verdict::Later { hold: Duration::from_millis(5), reordered: false }
        );
        let mut draws = [0.9, 0.1].into_iter();
        assert_eq!(
            rules.decide(0, 1, || draws.next().unwrap()),
            Verdict::Later { hold: Duration::from_millis(10), reordered: true }
        );
        assert_eq!(rules.decide(1, 0, || 0.0), Verdict::Now, "the other direction is plain");
        apply(&mut rules, &Command::Cut(Hosts::One(1), Hosts::One(2)));
        assert_eq!(rules.decide(1, 0, || 0.9), Verdict::Drop(DropCause::Cut));
    }

    #[test]
    fn held_frames_come_out_in_time_order_and_overtaking_is_counted() {
        let queue = HoldQueue::default();
        let now = Instant::now();
        let held = |seq| Held { src: 0, dst: 1, seq, frame: vec![seq as u8] };
        queue.push(now + Duration::from_millis(20), held(0));
        queue.push(now + Duration::from_millis(2), held(1));
        queue.push(now + Duration::from_millis(2), held(2));
        let mut out = Vec::new();
        while out.len() < 3 {
            out.extend(queue.take_due(Duration::from_secs(5)).into_iter().map(|h| h.seq));
        }
        assert_eq!(out, [1, 2, 0]);
        let mut counter = ReorderCounter::new(2);
        let overtaken: Vec<bool> = out.iter().map(|&s| counter.overtaken(0, 1, s)).collect();
        assert_eq!(overtaken, [false, false, true]);
        assert!(queue.take_due(Duration::from_millis(1)).is_empty());
    }

    #[test]
    fn stats_lines_round_trip() {
        let counters = Counters::default();
        Counters::bump(&counters.lost);
        let parsed = parse_stats(&counters.render()).unwrap();
        assert!(parsed.contains(&("lost".to_owned(), 1)) && parsed.contains(&("received".to_owned(), 0)));
        assert_eq!("02:73:6e:00:00:05".parse::<Mac>().unwrap(), host_mac(5));
        assert!(Mac([0xff; 6]).is_group() && !host_mac(1).is_group());
    }
}
