//! Memory and CPU of other processes, from `/proc` (Linux).

use std::time::{Duration, Instant};

/// Memory of one process or a sum over several, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Resident set size.
    pub rss: u64,
    /// Proportional set size (shared pages split between their users).
    pub pss: u64,
    /// Unique set size: pages no other process maps (`Private_Clean` +
    /// `Private_Dirty`).
    pub uss: u64,
}

impl std::ops::Add for Memory {
    type Output = Memory;
    fn add(self, o: Memory) -> Memory {
        Memory {
            rss: self.rss + o.rss,
            pss: self.pss + o.pss,
            uss: self.uss + o.uss,
        }
    }
}

/// `/proc/<pid>/smaps_rollup` of one process; zero if it is gone.
pub fn memory(pid: u32) -> Memory {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
        return Memory::default();
    };
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Memory {
        rss: field("Rss:"),
        pss: field("Pss:"),
        uss: field("Private_Clean:") + field("Private_Dirty:"),
    }
}

/// Every live process whose process group is `pgid`.
pub fn group(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| stat_fields(pid).and_then(|f| f.get(2)?.parse().ok()) == Some(pgid))
        .collect()
}

/// Memory summed over a process group.
pub fn group_memory(pgid: u32) -> Memory {
    group(pgid)
        .into_iter()
        .map(memory)
        .fold(Memory::default(), |a, b| a + b)
}

/// Fields of `/proc/<pid>/stat` after the command name (field 3 onwards).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// utime + stime of a process, in clock ticks (USER_HZ = 100).
pub fn cpu_ticks(pid: u32) -> u64 {
    stat_fields(pid)
        .map(|f| {
            // utime and stime are fields 14 and 15 of the line: 11 and 12 here.
            let t = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            t(11) + t(12)
        })
        .unwrap_or(0)
}

/// CPU used by `pids` over `window`, as a percentage of one core. Only
/// processes alive at both ends count (one that exits takes its ticks
/// with it).
pub async fn cpu_percent(pids: &[u32], window: Duration) -> f64 {
    let total = || pids.iter().map(|&p| cpu_ticks(p)).sum::<u64>();
    let before = total();
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let after = total();
    after.saturating_sub(before) as f64 / 100.0 / started.elapsed().as_secs_f64() * 100.0
}

/// CPU time of a set of processes from a starting point.
pub struct CpuClock {
    start: Vec<(u32, u64)>,
}

impl CpuClock {
    /// Reads the CPU time of `pids` now.
    pub fn start(pids: Vec<u32>) -> CpuClock {
        CpuClock {
            start: pids.into_iter().map(|p| (p, cpu_ticks(p))).collect(),
        }
    }

    /// CPU used since [`Self::start`] by `pids` (those that started later
    /// count whole; those that exited meanwhile are lost).
    pub fn used(&self, pids: &[u32]) -> Duration {
        let ticks: u64 = pids
            .iter()
            .map(|&p| {
                let before = self.start.iter().find(|(q, _)| *q == p).map_or(0, |s| s.1);
                cpu_ticks(p).saturating_sub(before)
            })
            .sum();
        Duration::from_millis(ticks * 10)
    }
}

/// Resident memory of one process by what holds it, in KiB, from
/// `/proc/<pid>/smaps` (one entry per mapping).
#[derive(Debug, Clone, Copy, Default)]
pub struct Breakdown {
    /// The pool's fiber stacks: anonymous read-write mappings of exactly the
    /// host's stack size (each stack is its own mapping, between guard
    /// pages).
    pub stacks: u64,
    /// Other anonymous memory: malloc's heap and arenas, the runtime's
    /// thread stacks, and the pages guests wrote in their linear memories
    /// and tables (the pool's slots; malloc's arenas can sit next to them,
    /// so smaps alone cannot tell the two apart).
    pub anonymous: u64,
    /// File-backed mappings: the binary, libraries, and the guests'
    /// initial memory images (copy-on-write from memory the engine shares,
    /// counted once per job that reads a page).
    pub files: u64,
}

impl std::ops::Sub for Breakdown {
    type Output = Breakdown;
    /// Growth from `o` (zero where it shrank).
    fn sub(self, o: Breakdown) -> Breakdown {
        Breakdown {
            stacks: self.stacks.saturating_sub(o.stacks),
            anonymous: self.anonymous.saturating_sub(o.anonymous),
            files: self.files.saturating_sub(o.files),
        }
    }
}

/// [`Breakdown`] of `pid`; zero if it is gone.
pub fn breakdown(pid: u32) -> Breakdown {
    let stack_kib = (agent_host::config::engine::ASYNC_STACK_SIZE >> 10) as u64;
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return Breakdown::default();
    };
    let mut out = Breakdown::default();
    let (mut anonymous_rw, mut anonymous, mut size) = (false, false, 0);
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        let value = || {
            words
                .clone()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: range, perms, offset, device, inode, path.
            let perms = words.next().unwrap_or_default();
            let path = words.nth(3);
            anonymous = path.is_none_or(|p| p.starts_with('['));
            anonymous_rw = anonymous && perms.starts_with("rw");
        } else if first == "Size:" {
            size = value();
        } else if first == "Rss:" {
            let class = if anonymous_rw && size == stack_kib {
                &mut out.stacks
            } else if anonymous {
                &mut out.anonymous
            } else {
                &mut out.files
            };
            *class += value();
        }
    }
    out
}
