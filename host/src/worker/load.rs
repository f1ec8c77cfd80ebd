//! How loaded the worker is, as reported to the server and used to decline
//! offers.
//!
//! Policy: the load is a number in 0..=1. At or above the threshold
//! (default 0.7, as the official workers) the worker reports `WS_FULL` and
//! declines offers. The default load is the larger of the job share
//! (running jobs plus accepted-but-unassigned offers, over the maximum) and
//! this process's share of the machine's CPUs, so both a full job table and
//! a busy CPU keep new jobs away. An embedder can supply its own function.

use std::sync::Arc;
use std::time::Instant;

/// What a load function sees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadInputs {
    /// Jobs running now.
    pub active_jobs: usize,
    /// Offers accepted and not yet assigned (they count as jobs already).
    pub reserved_jobs: usize,
    /// Most jobs this worker takes.
    pub max_jobs: usize,
    /// This process's CPU use over the last sample, as a share of all CPUs
    /// (0..=1).
    pub cpu_share: f32,
}

/// A load function: any `Fn(&LoadInputs) -> f32`.
pub type LoadFn = Arc<dyn Fn(&LoadInputs) -> f32 + Send + Sync>;

/// The default: `max((active + reserved) / max_jobs, cpu_share)`.
pub fn default_load(inputs: &LoadInputs) -> f32 {
    let jobs = (inputs.active_jobs + inputs.reserved_jobs) as f32 / inputs.max_jobs.max(1) as f32;
    jobs.max(inputs.cpu_share).clamp(0.0, 1.0)
}

/// Samples this process's CPU time from `/proc/self/stat`.
#[derive(Debug)]
pub(crate) struct CpuSampler {
    last: Option<(Instant, u64)>,
    ticks_per_second: f64,
    cpus: f64,
    share: f32,
}

impl CpuSampler {
    pub(crate) fn new() -> Self {
        Self {
            last: None,
            // USER_HZ is 100 on every Linux architecture agent-host runs on.
            ticks_per_second: 100.0,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
            share: 0.0,
        }
    }

    /// The share measured by the last [`sample`](Self::sample).
    pub(crate) fn share(&self) -> f32 {
        self.share
    }

    /// Takes a sample and returns the share of all CPUs this process used
    /// since the previous one (0 on the first call, or where `/proc` is not
    /// available).
    pub(crate) fn sample(&mut self) -> f32 {
        let Some(ticks) = process_cpu_ticks() else {
            return 0.0;
        };
        let now = Instant::now();
        if let Some((then, before)) = self.last {
            let wall = now.duration_since(then).as_secs_f64();
            if wall > 0.0 {
                let used = ticks.saturating_sub(before) as f64 / self.ticks_per_second;
                self.share = (used / wall / self.cpus).clamp(0.0, 1.0) as f32;
            }
        }
        self.last = Some((now, ticks));
        self.share
    }
}

/// utime + stime of this process, in clock ticks.
fn process_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may contain spaces; fields resume after its `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_load_takes_the_larger_share() {
        let inputs = LoadInputs {
            active_jobs: 3,
            reserved_jobs: 1,
            max_jobs: 10,
            cpu_share: 0.1,
        };
        assert!((default_load(&inputs) - 0.4).abs() < 1e-6);
        let busy = LoadInputs {
            cpu_share: 0.9,
            ..inputs
        };
        assert!((default_load(&busy) - 0.9).abs() < 1e-6);
    }

    #[test]
    fn cpu_sampler_measures_this_process() {
        let mut sampler = CpuSampler::new();
        assert!(process_cpu_ticks().is_some());
        assert_eq!(sampler.sample(), 0.0);
        let until = Instant::now() + std::time::Duration::from_millis(300);
        let mut x = 0u64;
        while Instant::now() < until {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(sampler.sample() > 0.0);
    }
}
