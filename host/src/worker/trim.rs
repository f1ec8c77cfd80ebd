//! Giving the heap that ended jobs freed back to the operating system.
//!
//! glibc's malloc keeps what it frees in its arenas (one per thread that
//! allocated, up to 8 per core) for later allocations, and returns pages
//! to the system only from the top of the main heap. A burst of jobs
//! frees its stores, instances and buffers in the middle of those arenas,
//! so without help the process keeps the burst's peak heap resident: in
//! the e2e benchmark, 186 MiB after the bursts of 1,000 and 5,000 jobs
//! (README, Performance). `malloc_trim(0)` hands every free page of every
//! arena back (`MADV_DONTNEED`), keeping the arenas themselves.
//!
//! Policy: the worker calls [`HeapTrim::tick`] at its status tick; it trims
//! once at least [`TRIM_AFTER_ENDED`] jobs ended since the last trim, so a
//! burst's memory is back within one status interval of its end, and a
//! host with a trickle of jobs trims seldom. A trim walks the arenas' free
//! lists while holding each arena's lock in turn, once per status interval
//! at most. Elsewhere than on glibc, `tick` does nothing.

/// Jobs that must have ended since the last trim for the next one: 256,
/// so a burst of hundreds of jobs is trimmed after, and a handful of jobs
/// does not make the worker walk every arena.
pub(super) const TRIM_AFTER_ENDED: usize = 256;

/// Counts ended jobs and trims the heap once enough have ended.
#[derive(Debug, Default)]
pub(super) struct HeapTrim {
    ended: usize,
}

impl HeapTrim {
    /// A job ended: its memory is back in malloc's arenas.
    pub(super) fn job_ended(&mut self) {
        self.ended += 1;
    }

    /// At the status tick: trims if enough jobs ended since the last trim.
    /// Returns whether it trimmed.
    pub(super) fn tick(&mut self) -> bool {
        if self.ended < TRIM_AFTER_ENDED {
            return false;
        }
        self.ended = 0;
        trim();
        true
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    let started = std::time::Instant::now();
    // SAFETY: `malloc_trim` only releases free memory inside malloc's own
    // arenas, under their locks; it has no preconditions on the caller.
    let released = unsafe { libc::malloc_trim(0) } == 1;
    tracing::debug!(released, took = ?started.elapsed(), "returned freed heap to the system");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_only_once_enough_jobs_ended() {
        let mut trim = HeapTrim::default();
        for _ in 0..TRIM_AFTER_ENDED - 1 {
            trim.job_ended();
        }
        assert!(!trim.tick(), "one job short of the threshold");
        trim.job_ended();
        assert!(trim.tick(), "at the threshold");
        assert!(!trim.tick(), "the count starts again after a trim");
    }
}
