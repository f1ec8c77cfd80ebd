//! Read-only views of the server state without copying it, for benchmarks
//! that watch thousands of jobs (where [`FakeLiveKit::jobs`] would clone
//! every record on every poll).

use crate::{FakeLiveKit, JobRecord};

impl FakeLiveKit {
    /// Calls `f` on every job record, in creation order, under the state
    /// lock: keep `f` short, the server waits meanwhile.
    pub fn for_each_job(&self, mut f: impl FnMut(&JobRecord)) {
        self.inner.read(|s| {
            s.job_order
                .iter()
                .filter_map(|id| s.jobs.get(id))
                .for_each(&mut f)
        });
    }
}
