//! Child processes of a test or benchmark: started with piped output, read line by line with a
//! deadline on every wait, and killed (by their own pid) when the guard is dropped, so a failing
//! test never leaves processes behind.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// One line of a child's output, tagged with the stream it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// A line on standard output.
    Out(String),
    /// A line on standard error (logs).
    Err(String),
}

/// A running child process. Dropping it kills the process (SIGKILL to its pid) and reaps it.
pub struct ChildProc {
    /// A short label for messages (e.g. the node name).
    pub label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<(Line, Instant)>,
    /// Every line seen so far, for failure messages.
    pub seen: Vec<Line>,
    /// When each line of [`ChildProc::seen`] was read from the child (by the reader thread, so
    /// independent of when the test looked).
    pub seen_at: Vec<Instant>,
}

impl ChildProc {
    /// Starts `cmd` with stdin, stdout and stderr piped. Each output stream is read by a thread
    /// that forwards lines until the stream closes.
    pub fn spawn(label: impl Into<String>, mut cmd: Command) -> std::io::Result<ChildProc> {
        let label = label.into();
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let (tx, lines) = channel();
        if let Some(out) = child.stdout.take() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send((Line::Out(line), Instant::now())).is_err() {
                        break;
                    }
                }
            });
        }
        if let Some(err) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if tx.send((Line::Err(line), Instant::now())).is_err() {
                        break;
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Ok(ChildProc { label, child, stdin, lines, seen: Vec::new(), seen_at: Vec::new() })
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes one line to the child's stdin.
    pub fn send_line(&mut self, line: &str) -> std::io::Result<()> {
        match self.stdin.as_mut() {
            Some(stdin) => {
                stdin.write_all(line.as_bytes())?;
                stdin.write_all(b"\n")?;
                stdin.flush()
            }
            None => Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin closed")),
        }
    }

    /// Waits until an output line (stdout or stderr) satisfies `pred` and returns it; `Err` with
    /// the output seen so far if `timeout` passes or the child's output ends first.
    pub fn expect(&mut self, timeout: Duration, mut pred: impl FnMut(&Line) -> bool) -> Result<Line, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((line, at)) => {
                    self.record(line.clone(), at);
                    if pred(&line) {
                        return Ok(line);
                    }
                }
                Err(e) => {
                    let what = match e {
                        RecvTimeoutError::Timeout => format!("timed out after {timeout:?}"),
                        RecvTimeoutError::Disconnected => "output ended".to_owned(),
                    };
                    let transcript = self.transcript();
                    return Err(format!("{}: {what}; output:\n{transcript}", self.label));
                }
            }
        }
    }

    fn record(&mut self, line: Line, at: Instant) {
        self.seen.push(line);
        self.seen_at.push(at);
    }

    /// Moves every line the child printed so far into [`ChildProc::seen`], without waiting.
    pub fn drain(&mut self) {
        while let Ok((line, at)) = self.lines.try_recv() {
            self.record(line, at);
        }
    }

    /// Waits until a stdout line printed after the first `from` lines of [`ChildProc::seen`]
    /// satisfies `pred` (looking first at lines already seen); returns the line and when it was
    /// read.
    pub fn expect_out_since(
        &mut self,
        from: usize,
        timeout: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Result<(String, Instant), String> {
        self.drain();
        let old = self.seen.iter().zip(&self.seen_at).skip(from).find_map(|(l, at)| match l {
            Line::Out(t) if pred(t) => Some((t.clone(), *at)),
            _ => None,
        });
        if let Some(found) = old {
            return Ok(found);
        }
        let line = self.expect_out(timeout, &mut pred)?;
        Ok((line, *self.seen_at.last().unwrap_or(&Instant::now())))
    }

    /// Waits until a stdout line satisfies `pred` and returns it (see [`ChildProc::expect`]).
    pub fn expect_out(&mut self, timeout: Duration, mut pred: impl FnMut(&str) -> bool) -> Result<String, String> {
        match self.expect(timeout, |l| matches!(l, Line::Out(t) if pred(t)))? {
            Line::Out(t) | Line::Err(t) => Ok(t),
        }
    }

    /// Waits until a stderr line (a log line) satisfies `pred` and returns it.
    pub fn expect_err(&mut self, timeout: Duration, mut pred: impl FnMut(&str) -> bool) -> Result<String, String> {
        match self.expect(timeout, |l| matches!(l, Line::Err(t) if pred(t)))? {
            Line::Out(t) | Line::Err(t) => Ok(t),
        }
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest of it.
    pub fn expect_prefix(&mut self, timeout: Duration, prefix: &str) -> Result<String, String> {
        self.expect_out(timeout, |l| l.starts_with(prefix)).map(|l| l[prefix.len()..].trim().to_owned())
    }

    /// Collects every stdout line until the child's output ends or `timeout` passes, then waits
    /// for the exit status (`None` if it had to be killed).
    pub fn finish(&mut self, timeout: Duration) -> (Vec<String>, Option<ExitStatus>) {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((line, at)) => {
                    self.record(line.clone(), at);
                    if let Line::Out(text) = line {
                        out.push(text);
                    }
                }
                Err(_) => break,
            }
        }
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        (out, status)
    }

    /// Sends `signal` (e.g. `"KILL"`, `"STOP"`, `"CONT"`) to this child's pid with kill(1).
    pub fn signal(&self, signal: &str) -> std::io::Result<()> {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("kill -{signal} {} failed", self.child.id())))
        }
    }

    /// Kills the child (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything seen so far, one line each, stderr lines marked.
    pub fn transcript(&mut self) -> String {
        self.drain();
        self.seen
            .iter()
            .map(|l| match l {
                Line::Out(t) => format!("  | {t}"),
                Line::Err(t) => format!("  ! {t}"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        // SIGKILL also ends a stopped (SIGSTOP) process on Linux, so kill and reap are enough.
        self.kill();
    }
}
