//! The testbed's user-space Ethernet switch (see `snow_integration::testbed::switch` for what it
//! decides and why it exists). Runs inside the testbed's switch namespace:
//!
//! `snow-testbed-switch PORT=MAC...`: port n (1-based, in argument order) is the interface named
//! PORT, whose far end is host n with address MAC. Prints `READY` once every port is open, then
//! reads control lines on stdin (`set`, `cut`, `heal`, `clear`, `stats`), answering each with one
//! line (`OK`, `STATS ...`, or `ERROR reason`). Exits at the end of stdin.
#![forbid(unsafe_code)]

use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use pnet_datalink::{Channel, Config, DataLinkReceiver, DataLinkSender};
use rand::Rng;
use snow_integration::testbed::switch::{
    apply, dst_mac, fix_checksums, parse_command, src_mac, Command, Counters, DropCause, Held, HoldQueue, Mac,
    ReorderCounter, Rules, Verdict, MAX_HOSTS,
};

/// Everything the port threads share.
struct Switch {
    macs: Vec<Mac>,
    senders: Vec<Mutex<Box<dyn DataLinkSender>>>,
    rules: RwLock<Rules>,
    counters: Counters,
    held: HoldQueue,
    /// Arrival numbers per link (src * hosts + dst), for the reorder count.
    arrivals: Vec<AtomicU64>,
}

impl Switch {
    fn send(&self, dst: usize, frame: &[u8]) {
        let mut sender = self.senders[dst].lock().unwrap_or_else(|e| e.into_inner());
        match sender.send_to(frame, None) {
            Some(Ok(())) => Counters::bump(&self.counters.forwarded),
            Some(Err(e)) => self.send_failed(dst, &e.to_string()),
            None => self.send_failed(dst, "no room in the send buffer"),
        }
    }

    fn send_failed(&self, dst: usize, why: &str) {
        if self.counters.send_errors.fetch_add(1, Ordering::Relaxed) < 10 {
            eprintln!("snow-testbed-switch: send to host {} failed: {why}", dst + 1);
        }
    }

    /// Handles one frame that host `src` sent.
    fn forward(&self, src: usize, frame: &[u8]) {
        // A port also shows the frames this switch sent out of it: only frames from the host
        // behind the port are new.
        if src_mac(frame) != Some(self.macs[src]) {
            return;
        }
        Counters::bump(&self.counters.received);
        let Some(dst) = dst_mac(frame) else { return };
        let targets: Vec<usize> = if dst.is_group() {
            (0..self.macs.len()).filter(|&d| d != src).collect()
        } else {
            match self.macs.iter().position(|m| *m == dst) {
                Some(d) if d != src => vec![d],
                _ => {
                    Counters::bump(&self.counters.unknown);
                    return;
                }
            }
        };
        let mut frame = frame.to_vec();
        fix_checksums(&mut frame);
        let hosts = self.macs.len();
        let mut rng = rand::thread_rng();
        for d in targets {
            let verdict = self.rules.read().unwrap_or_else(|e| e.into_inner()).decide(src, d, || rng.gen());
            match verdict {
                Verdict::Drop(DropCause::Cut) => Counters::bump(&self.counters.cut),
                Verdict::Drop(DropCause::Loss) => Counters::bump(&self.counters.lost),
                Verdict::Now => self.send(d, &frame),
                Verdict::Later { hold, .. } => {
                    Counters::bump(&self.counters.delayed);
                    let seq = self.arrivals[src * hosts + d].fetch_add(1, Ordering::Relaxed);
                    self.held.push(Instant::now() + hold, Held { src, dst: d, seq, frame: frame.clone() });
                }
            }
        }
    }

    /// Sends held frames when they are due, forever.
    fn release_held(&self) {
        let mut order = ReorderCounter::new(self.macs.len());
        loop {
            for held in self.held.take_due(Duration::from_secs(1)) {
                if order.overtaken(held.src, held.dst, held.seq) {
                    Counters::bump(&self.counters.reordered);
                }
                self.send(held.dst, &held.frame);
            }
        }
    }
}

/// Both ends of a port's packet socket.
type Port = (Box<dyn DataLinkSender>, Box<dyn DataLinkReceiver>);

fn open_port(name: &str) -> Result<Port, String> {
    let iface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == name)
        .ok_or_else(|| format!("no interface {name} in this network namespace"))?;
    let config = Config { read_buffer_size: 65536, write_buffer_size: 65536, ..Config::default() };
    match pnet_datalink::channel(&iface, config) {
        Ok(Channel::Ethernet(tx, rx)) => Ok((tx, rx)),
        Ok(_) => Err(format!("{name}: not an Ethernet channel")),
        Err(e) => Err(format!("cannot open a packet socket on {name}: {e} (needs root)")),
    }
}

fn main() {
    let ports: Vec<(String, Mac)> = match std::env::args()
        .skip(1)
        .map(|arg| {
            let (name, mac) = arg.split_once('=').ok_or_else(|| format!("bad port {arg}: expected NAME=MAC"))?;
            Ok((name.to_owned(), mac.parse()?))
        })
        .collect::<Result<Vec<_>, String>>()
    {
        Ok(ports) if (2..=MAX_HOSTS).contains(&ports.len()) => ports,
        Ok(_) => fail(&format!("usage: snow-testbed-switch PORT=MAC... (2 to {MAX_HOSTS} ports)")),
        Err(e) => fail(&e),
    };
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for (name, _) in &ports {
        match open_port(name) {
            Ok((tx, rx)) => {
                senders.push(Mutex::new(tx));
                receivers.push(rx);
            }
            Err(e) => fail(&e),
        }
    }
    let hosts = ports.len();
    let switch = Arc::new(Switch {
        macs: ports.iter().map(|(_, mac)| *mac).collect(),
        senders,
        rules: RwLock::new(Rules::new(hosts)),
        counters: Counters::default(),
        held: HoldQueue::default(),
        arrivals: (0..hosts * hosts).map(|_| AtomicU64::new(0)).collect(),
    });
    for (src, mut rx) in receivers.into_iter().enumerate() {
        let switch = switch.clone();
        std::thread::spawn(move || loop {
            match rx.next() {
                Ok(frame) => switch.forward(src, frame),
                Err(e) => {
                    eprintln!("snow-testbed-switch: reading port {} failed: {e}", src + 1);
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        });
    }
    let releaser = switch.clone();
    std::thread::spawn(move || releaser.release_held());
    println!("READY");
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        match parse_command(&line, hosts) {
            Ok(Command::Stats) => println!("{}", switch.counters.render()),
            Ok(command) => {
                apply(&mut switch.rules.write().unwrap_or_else(|e| e.into_inner()), &command);
                println!("OK");
            }
            Err(e) => println!("ERROR {e}"),
        }
    }
}

fn fail(why: &str) -> ! {
    eprintln!("snow-testbed-switch: {why}");
    std::process::exit(2)
}
