//! The pool's budget: what one job of a plugin takes from the pooling
//! allocator, and how many such jobs fit.
//!
//! Policy: the pool's totals (core instances, memories, tables) are a
//! budget in those units, `max_jobs` times the per-job share set in
//! [`config::engine`](crate::config::engine). Each job draws what its
//! plugin needs ([`Footprint`]) when it is offered and gives it back when
//! its store is dropped (which is when wasmtime frees its slots), so a
//! plugin smaller than the share leaves room unused and one larger than the
//! share fits fewer jobs; the number of component instances (one per job)
//! still bounds the count at `max_jobs`.
//!
//! Invariants:
//! - a job is instantiated only after its draw succeeded, so wasmtime never
//!   reaches its own "maximum concurrent limit" in the pool: a job the pool
//!   cannot hold is refused before instantiation with a reason naming the
//!   unit that ran out;
//! - a plugin whose footprint exceeds the whole budget (not even one job
//!   fits) is refused at load;
//! - the counts are those wasmtime's pooling allocator uses: every core
//!   instantiation in the component, nested components included as often
//!   as they are instantiated, and the memories and tables the instantiated
//!   modules define (`Component::resources_required`).

use std::fmt;
use std::sync::{Arc, Mutex};

use wasmparser::{
    ComponentAlias, ComponentExternalKind, ComponentInstance, ComponentOuterAliasKind,
    ComponentTypeRef, Encoding, Instance, Parser, Payload,
};

/// What one job of a plugin takes from the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Footprint {
    /// Core module instances in one instance of the component.
    pub core_instances: u32,
    /// Linear memories those instances define.
    pub memories: u32,
    /// Tables those instances define.
    pub tables: u32,
}

impl Footprint {
    /// `n` times this footprint (saturating).
    pub fn times(self, n: u32) -> Self {
        Self {
            core_instances: self.core_instances.saturating_mul(n),
            memories: self.memories.saturating_mul(n),
            tables: self.tables.saturating_mul(n),
        }
    }

    /// How many jobs of footprint `need` fit in `self`, at most `cap`.
    fn fits(self, need: Self, cap: u32) -> u32 {
        let per = |have: u32, need: u32| have.checked_div(need).unwrap_or(u32::MAX);
        per(self.core_instances, need.core_instances)
            .min(per(self.memories, need.memories))
            .min(per(self.tables, need.tables))
            .min(cap)
    }

    /// The first unit of which `self` has less than `need`, for errors.
    fn short_of(self, need: Self) -> Option<(&'static str, u32, u32)> {
        [
            ("core instances", self.core_instances, need.core_instances),
            ("memories", self.memories, need.memories),
            ("tables", self.tables, need.tables),
        ]
        .into_iter()
        .find(|(_, have, need)| have < need)
    }

    fn plus(self, other: Self) -> Self {
        Self {
            core_instances: self.core_instances.saturating_add(other.core_instances),
            memories: self.memories.saturating_add(other.memories),
            tables: self.tables.saturating_add(other.tables),
        }
    }

    fn minus(self, other: Self) -> Self {
        Self {
            core_instances: self.core_instances.saturating_sub(other.core_instances),
            memories: self.memories.saturating_sub(other.memories),
            tables: self.tables.saturating_sub(other.tables),
        }
    }
}

impl fmt::Display for Footprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "core instances {}, memories {}, tables {}",
            self.core_instances, self.memories, self.tables
        )
    }
}

/// The pool's totals and what the live jobs hold of them.
#[derive(Debug)]
pub(crate) struct Budget {
    total: Footprint,
    /// Most jobs at once whatever their size: the pool's component instances.
    max_jobs: u32,
    /// Held by live jobs: units, and the number of jobs.
    used: Mutex<(Footprint, u32)>,
}

impl Budget {
    pub(crate) fn new(total: Footprint, max_jobs: u32) -> Arc<Self> {
        Arc::new(Self {
            total,
            max_jobs,
            used: Mutex::new((Footprint::default(), 0)),
        })
    }

    /// The pool's totals.
    pub(crate) fn total(&self) -> Footprint {
        self.total
    }

    /// How many jobs of footprint `need` fit in the empty pool.
    pub(crate) fn jobs_fit(&self, need: Footprint) -> u32 {
        self.total.fits(need, self.max_jobs)
    }

    /// The largest share of any unit (jobs included) that live jobs hold, 0..=1.
    pub(crate) fn share_used(&self) -> f32 {
        let (used, jobs) = *self.lock();
        let share = |used: u32, total: u32| used as f32 / total.max(1) as f32;
        share(used.core_instances, self.total.core_instances)
            .max(share(used.memories, self.total.memories))
            .max(share(used.tables, self.total.tables))
            .max(share(jobs, self.max_jobs))
    }

    /// Takes `need` for one job, or says which unit ran out.
    pub(crate) fn draw(self: &Arc<Self>, need: Footprint) -> Result<Draw, String> {
        let mut used = self.lock();
        let free = self.total.minus(used.0);
        if used.1 >= self.max_jobs {
            return Err(format!(
                "the pool is full: {} jobs of at most {} are alive",
                used.1, self.max_jobs
            ));
        }
        if let Some((unit, free, need)) = free.short_of(need) {
            return Err(format!(
                "the pool is full: the job needs {need} {unit} and {free} of {} are free",
                match unit {
                    "core instances" => self.total.core_instances,
                    "memories" => self.total.memories,
                    _ => self.total.tables,
                }
            ));
        }
        used.0 = used.0.plus(need);
        used.1 += 1;
        Ok(Draw {
            budget: self.clone(),
            need,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Footprint, u32)> {
        // The counts stay consistent whatever panicked while holding them.
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One job's share of the pool; given back when dropped (with the job's store).
#[derive(Debug)]
pub(crate) struct Draw {
    budget: Arc<Budget>,
    need: Footprint,
}

impl Drop for Draw {
    fn drop(&mut self) {
        let mut used = self.budget.lock();
        used.0 = used.0.minus(self.need);
        used.1 = used.1.saturating_sub(1);
    }
}

/// Core instances one instance of the component creates, as wasmtime's
/// pooling allocator counts them: each core `instantiate`, and each nested
/// component's count as often as it is instantiated. A nested component the
/// binary only imports counts nothing (the host imports none).
pub(crate) fn core_instances(bytes: &[u8]) -> Result<u32, String> {
    /// One component being read: the core instances of its own
    /// instantiations, and its component index space (each entry's count).
    #[derive(Default)]
    struct Frame {
        count: u32,
        components: Vec<u32>,
    }
    // A nesting level: a component's frame, or a core module (skipped).
    let mut stack: Vec<Option<Frame>> = Vec::new();
    let mut top = None;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| e.to_string())?;
        let outer = |stack: &[Option<Frame>], up: u32, index: u32| {
            let frames: Vec<&Frame> = stack.iter().flatten().collect();
            frames
                .len()
                .checked_sub(1 + up as usize)
                .and_then(|i| frames[i].components.get(index as usize))
                .copied()
                .unwrap_or(0)
        };
        match payload {
            Payload::Version { encoding, .. } => stack.push(match encoding {
                Encoding::Component => Some(Frame::default()),
                Encoding::Module => None,
            }),
            Payload::End(_) => {
                if let Some(Some(done)) = stack.pop() {
                    match stack.iter_mut().rev().flatten().next() {
                        Some(parent) => parent.components.push(done.count),
                        None => top = Some(done.count),
                    }
                }
            }
            Payload::InstanceSection(reader) => {
                if let Some(Some(frame)) = stack.last_mut() {
                    for instance in reader {
                        if let Instance::Instantiate { .. } = instance.map_err(|e| e.to_string())? {
                            frame.count = frame.count.saturating_add(1);
                        }
                    }
                }
            }
            Payload::ComponentInstanceSection(reader) => {
                if let Some(Some(frame)) = stack.last_mut() {
                    for instance in reader {
                        if let ComponentInstance::Instantiate {
                            component_index, ..
                        } = instance.map_err(|e| e.to_string())?
                        {
                            let nested = frame
                                .components
                                .get(component_index as usize)
                                .copied()
                                .unwrap_or(0);
                            frame.count = frame.count.saturating_add(nested);
                        }
                    }
                }
            }
            Payload::ComponentImportSection(reader) => {
                if let Some(Some(frame)) = stack.last_mut() {
                    for import in reader {
                        if let ComponentTypeRef::Component(_) =
                            import.map_err(|e| e.to_string())?.ty
                        {
                            frame.components.push(0);
                        }
                    }
                }
            }
            Payload::ComponentExportSection(reader) => {
                if let Some(Some(frame)) = stack.last_mut() {
                    for export in reader {
                        let export = export.map_err(|e| e.to_string())?;
                        if export.kind == ComponentExternalKind::Component {
                            let count = frame
                                .components
                                .get(export.index as usize)
                                .copied()
                                .unwrap_or(0);
                            frame.components.push(count);
                        }
                    }
                }
            }
            Payload::ComponentAliasSection(reader) => {
                for alias in reader {
                    let count = match alias.map_err(|e| e.to_string())? {
                        ComponentAlias::InstanceExport {
                            kind: ComponentExternalKind::Component,
                            ..
                        } => 0,
                        ComponentAlias::Outer {
                            kind: ComponentOuterAliasKind::Component,
                            count,
                            index,
                        } => outer(&stack, count, index),
                        _ => continue,
                    };
                    if let Some(Some(frame)) = stack.last_mut() {
                        frame.components.push(count);
                    }
                }
            }
            _ => {}
        }
    }
    top.ok_or_else(|| "the component ends early".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(core_instances: u32, memories: u32, tables: u32) -> Footprint {
        Footprint {
            core_instances,
            memories,
            tables,
        }
    }

    #[test]
    fn jobs_fit_by_the_scarcest_unit() {
        let budget = Budget::new(fp(16, 2, 4).times(10), 10);
        assert_eq!(budget.jobs_fit(fp(14, 1, 3)), 10, "capped by max_jobs");
        assert_eq!(budget.jobs_fit(fp(32, 1, 1)), 5, "instances");
        assert_eq!(budget.jobs_fit(fp(1, 3, 1)), 6, "memories");
        assert_eq!(budget.jobs_fit(fp(1, 1, 0)), 10, "no tables needed");
        assert_eq!(budget.jobs_fit(fp(161, 1, 1)), 0, "too large for the pool");
    }

    #[test]
    fn draws_are_refused_when_a_unit_runs_out_and_given_back_on_drop() {
        let budget = Budget::new(fp(16, 2, 4).times(2), 2);
        let big = fp(20, 1, 1);
        let first = budget.draw(big).expect("room for one");
        let err = budget.draw(big).expect_err("12 instances left");
        assert!(
            err.contains("needs 20 core instances and 12 of 32 are free"),
            "{err}"
        );
        assert!(budget.share_used() > 0.6);
        drop(first);
        assert_eq!(budget.share_used(), 0.0);
        let small = fp(1, 1, 1);
        let _a = budget.draw(small).expect("first");
        let _b = budget.draw(small).expect("second");
        let err = budget.draw(small).expect_err("max_jobs reached");
        assert!(err.contains("2 jobs of at most 2"), "{err}");
    }

    /// The walk counts what wasmtime counts: core instantiations, nested
    /// components as often as they are instantiated (and through an outer
    /// alias), and not `FromExports` instances.
    #[test]
    fn counts_core_instances_like_wasmtime() {
        let bytes = wat::parse_str(
            r#"(component
                (core module $m (memory (export "memory") 1))
                (core instance $a (instantiate $m))
                (core instance $b (instantiate $m))
                (core instance (export "x" (memory $a "memory")))
                (component $inner
                    (core module $n)
                    (core instance (instantiate $n))
                    (component $innermost
                        (core module $o)
                        (core instance (instantiate $o))
                    )
                    (instance (instantiate $innermost))
                    (instance (instantiate $innermost))
                )
                (instance (instantiate $inner))
                (instance (instantiate $inner))
                (component $again
                    (alias outer 1 $inner (component $i))
                    (instance (instantiate $i))
                )
                (instance (instantiate $again))
            )"#,
        )
        .expect("valid WAT");
        // 2 here; $inner is 1 + 2 × 1 = 3, twice; $again is one $inner.
        let counted = core_instances(&bytes).expect("a component");
        assert_eq!(counted, 2 + 2 * 3 + 3);

        // wasmtime's own accounting: one fewer than the walk is refused.
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.max_core_instances_per_component(counted - 1);
        let mut config = wasmtime::Config::new();
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool.clone()));
        let engine = wasmtime::Engine::new(&config).expect("an engine");
        let err = wasmtime::component::Component::new(&engine, &bytes)
            .expect_err("over the per-component maximum");
        assert!(
            format!("{err:#}").contains(&format!("contains {counted} core module instances")),
            "{err:#}"
        );
        pool.max_core_instances_per_component(counted);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let engine = wasmtime::Engine::new(&config).expect("an engine");
        wasmtime::component::Component::new(&engine, &bytes).expect("exactly at the maximum");
    }
}
