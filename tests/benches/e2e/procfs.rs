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

/// TCP segments this machine has sent (`OutSegs` of `/proc/net/snmp`, all
/// processes and both ends of every loopback connection).
pub fn tcp_segments_sent() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (Some(names), Some(values)) = (tcp.next(), tcp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "OutSegs")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
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
/// `/proc/<pid>/smaps` (one entry per mapping), told apart by the pooling
/// allocator's layout:
/// - a fiber stack is its own read-write mapping of exactly the host's
///   stack size, right above a one-page guard;
/// - a linear memory slot is its accessible read-write part (split around
///   the copy-on-write mapping of the guest's memory image, if any) right
///   below the rest of its reservation, inaccessible and larger than any
///   malloc arena (64 MiB), or right next to that image mapping;
/// - the table pool is one read-write mapping larger than 1 GiB, which no
///   malloc arena reaches.
///
/// The kernel merges adjacent anonymous mappings of the same protection,
/// so a malloc arena placed right next to the table pool counts as tables
/// (runs of the e2e benchmark showed 0 to 6 KiB of heap per job there);
/// the sum of the classes is exact, and a heap profile (heaptrack) tells
/// heap from tables exactly.
#[derive(Debug, Clone, Copy, Default)]
pub struct Breakdown {
    /// The pool's fiber stacks.
    pub stacks: u64,
    /// Pages the guests wrote in their linear memories.
    pub memories: u64,
    /// Pages of the pool's tables that guests' instances filled.
    pub tables: u64,
    /// Other anonymous memory: malloc's heap and arenas (the stores and
    /// instances of wasmtime, the host's own state) and the runtime's
    /// thread stacks.
    pub heap: u64,
    /// File-backed mappings: the binary, libraries, and the guests'
    /// initial memory images (copy-on-write from the compiled component,
    /// counted once per job that reads a page: the kernel maps up to 64 KiB
    /// around each page read).
    pub files: u64,
}

impl std::ops::Sub for Breakdown {
    type Output = Breakdown;
    /// Growth from `o` (zero where it shrank).
    fn sub(self, o: Breakdown) -> Breakdown {
        Breakdown {
            stacks: self.stacks.saturating_sub(o.stacks),
            memories: self.memories.saturating_sub(o.memories),
            tables: self.tables.saturating_sub(o.tables),
            heap: self.heap.saturating_sub(o.heap),
            files: self.files.saturating_sub(o.files),
        }
    }
}

/// One mapping of `/proc/<pid>/smaps`, in KiB.
struct Mapping {
    start: u64,
    end: u64,
    /// Read-write and private.
    rw: bool,
    /// No access at all (a guard or an unused reservation).
    none: bool,
    /// Anonymous (no path, or a pseudo-path such as `[heap]`).
    anonymous: bool,
    rss: u64,
}

impl Mapping {
    fn size(&self) -> u64 {
        self.end - self.start
    }
}

/// The mappings of `pid`, in address order; empty if it is gone.
fn mappings(pid: u32) -> Vec<Mapping> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return Vec::new();
    };
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if let Some((start, end)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            // A mapping's header: range, perms, offset, device, inode, path.
            let kib = |hex| u64::from_str_radix(hex, 16).unwrap_or(0) >> 10;
            let perms = words.next().unwrap_or_default();
            let path = words.nth(3);
            out.push(Mapping {
                start: kib(start),
                end: kib(end),
                rw: perms.starts_with("rw"),
                none: perms.starts_with("---"),
                anonymous: path.is_none_or(|p| p.starts_with('[')),
                rss: 0,
            });
        } else if first == "Rss:"
            && let Some(last) = out.last_mut()
        {
            last.rss = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    out
}

/// [`Breakdown`] of `pid`; zero if it is gone.
pub fn breakdown(pid: u32) -> Breakdown {
    /// malloc's largest arena (glibc's `HEAP_MAX_SIZE` on 64-bit).
    const ARENA_KIB: u64 = 64 << 10;
    const TABLE_POOL_KIB: u64 = 1 << 20;
    let stack_kib = (agent_host::config::engine::ASYNC_STACK_SIZE >> 10) as u64;
    let page_kib = 4;
    let maps = mappings(pid);
    let mut out = Breakdown::default();
    for (i, m) in maps.iter().enumerate() {
        let before = i
            .checked_sub(1)
            .map(|j| &maps[j])
            .filter(|b| b.end == m.start);
        let after = maps.get(i + 1).filter(|a| a.start == m.end);
        let class = if !m.anonymous {
            &mut out.files
        } else if !m.rw {
            &mut out.heap
        } else if m.size() == stack_kib && before.is_some_and(|b| b.none && b.size() == page_kib) {
            &mut out.stacks
        } else if m.size() > TABLE_POOL_KIB {
            &mut out.tables
        } else if after.is_some_and(|a| (a.none && a.size() > ARENA_KIB) || !a.anonymous)
            || before.is_some_and(|b| !b.anonymous)
        {
            &mut out.memories
        } else {
            &mut out.heap
        };
        *class += m.rss;
    }
    out
}
