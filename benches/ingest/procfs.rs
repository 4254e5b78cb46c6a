//! What the kernel says about the processes under test: CPU time of a process
//! or of some of its threads, the whole machine's busy time, and memory.

use std::time::{Duration, Instant};

/// CPU time of a process (all threads), from /proc/<pid>/stat, in seconds.
pub fn process_cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ is 100 on every Linux we run on.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU time of the calling thread, in seconds (schedstat: nanoseconds on CPU).
pub fn thread_cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ns| ns / 1e9)
        .unwrap_or(0.0)
}

/// CPU time of a process's threads called `name` (e.g. the database writer), in seconds.
pub fn threads_cpu_secs(pid: u32, name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ns| ns / 1e9)
        .sum()
}

/// (busy, total) jiffies of the whole machine, from /proc/stat.
pub fn machine_jiffies() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or_default();
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

/// A `Vm…:` line of /proc/<pid>/status, in KiB (0 when the process is gone).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Peak resident memory so far.
pub fn vm_hwm_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// Resident memory now.
pub fn vm_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// Resident memory once it has stopped moving: read every 100 ms until five
/// readings in a row are within 64 KiB of the one before (at most 5 s).
pub fn settled_rss_kib(pid: u32) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = vm_rss_kib(pid);
    let mut steady = 0;
    while steady < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = vm_rss_kib(pid);
        steady = if now.abs_diff(last) <= 64 {
            steady + 1
        } else {
            0
        };
        last = now;
    }
    last
}

/// The gateway's database writer thread, whose CPU time is shown on its own.
pub const WRITER_THREAD: &str = "wabridge-writer";

/// CPU counters at one moment: the server process, its writer thread, this
/// bench process (load generator and receivers), the machine.
pub struct Usage {
    server: f64,
    writer: f64,
    bench: f64,
    machine: (f64, f64),
}

/// Average CPU cores used over a phase.
#[derive(Clone, Copy, Default)]
pub struct Cores {
    /// The process under test: the gateway, or the bare server.
    pub server: f64,
    /// The gateway's database writer thread (0 for the bare server).
    pub writer: f64,
    /// The load generator's threads, each measuring its own CPU time.
    pub generator: f64,
    /// This whole bench process: generator, receivers, bookkeeping.
    pub bench: f64,
    /// Every process on the machine, including other users' builds.
    pub machine: f64,
}

impl Usage {
    pub fn sample(server_pid: u32) -> Usage {
        Usage {
            server: process_cpu_secs(&server_pid.to_string()),
            writer: threads_cpu_secs(server_pid, WRITER_THREAD),
            bench: process_cpu_secs("self"),
            machine: machine_jiffies(),
        }
    }

    /// Cores used since `earlier`, over `wall` seconds; `generator_cpu` is the
    /// load threads' own total (they are gone by the time this is sampled).
    pub fn since(&self, earlier: &Usage, wall: f64, generator_cpu: f64) -> Cores {
        let wall = wall.max(1e-6);
        let machine = {
            let (busy, total) = (
                self.machine.0 - earlier.machine.0,
                self.machine.1 - earlier.machine.1,
            );
            // jiffies of all CPUs over the same wall time: busy / (total / cores).
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            if total > 0.0 {
                busy / total * cores
            } else {
                0.0
            }
        };
        Cores {
            server: (self.server - earlier.server) / wall,
            writer: (self.writer - earlier.writer) / wall,
            generator: generator_cpu / wall,
            bench: (self.bench - earlier.bench) / wall,
            machine,
        }
    }
}
