//! Prewarm: a 10 MB lookup table built once per plugin version, in
//! `prewarm`, and read by every job.
//!
//! The host runs [`prewarm`] when it loads the plugin and snapshots the
//! memory it filled; each job starts with [`TABLE`] already there, shared
//! copy-on-write with every other job. The job says what it read:
//!
//! `table: 2621440 entries, table[1234567] = …, checksum …, prewarmed`
//!
//! Job metadata (words, in any order):
//! - `in-run`: build a table of its own in `run` instead, as an agent
//!   without prewarm would (the comparison of `tests/benches/prewarm.rs`);
//! - `stay`: stay in the room until it closes, instead of ending once it
//!   has spoken (idle jobs, for memory measurements).

use std::sync::OnceLock;

use agent_host_sdk::{Agent, JobContext, RoomEvent};

/// Entries in the table: 10 MiB of `u32`.
pub const ENTRIES: usize = (10 << 20) / 4;

/// The entry `table[i]` reads: a mix of the bits of `i` (SplitMix32's
/// finaliser), deterministic so that a job can check what it reads.
pub fn entry(i: u32) -> u32 {
    let mut z = i.wrapping_add(0x9e37_79b9);
    z = (z ^ (z >> 16)).wrapping_mul(0x85eb_ca6b);
    z = (z ^ (z >> 13)).wrapping_mul(0xc2b2_ae35);
    z ^ (z >> 16)
}

/// The table, filled by [`prewarm`] (or by the first job, on a host that
/// does not prewarm).
static TABLE: OnceLock<Vec<u32>> = OnceLock::new();

fn build() -> Vec<u32> {
    (0..ENTRIES as u32).map(entry).collect()
}

/// Runs once per plugin version, before any job.
fn prewarm() -> Result<(), String> {
    TABLE
        .set(build())
        .map_err(|_| "the table was already built".to_string())?;
    agent_host_sdk::info!("prewarm: built {ENTRIES} entries");
    Ok(())
}

/// What a job says: the table's size, one entry and a checksum of 64
/// entries spread over it (read, not written: the pages stay shared).
fn describe(table: &[u32], prewarmed: bool) -> String {
    let probe = 1_234_567;
    let checksum = (0..64)
        .map(|k| table[k * (table.len() / 64)])
        .fold(0u32, |acc, v| acc.rotate_left(5) ^ v);
    let origin = if prewarmed {
        "prewarmed"
    } else {
        "built in run"
    };
    format!(
        "table: {} entries, table[{probe}] = {}, checksum {checksum:08x}, {origin}",
        table.len(),
        table[probe]
    )
}

struct Prewarmed;

impl Agent for Prewarmed {
    fn run(ctx: JobContext) -> Result<(), String> {
        let metadata = ctx.info().metadata;
        let words: Vec<&str> = metadata.split_whitespace().collect();
        let room = ctx.room();
        let said = if words.contains(&"in-run") {
            describe(&build(), false)
        } else {
            let prewarmed = TABLE.get().is_some();
            describe(TABLE.get_or_init(build), prewarmed)
        };
        room.send_text(&said)?;
        if words.contains(&"stay") {
            for event in room.events() {
                if let RoomEvent::Closed(_) = event {
                    break;
                }
            }
        }
        Ok(())
    }
}

agent_host_sdk::export_agent!(Prewarmed, prewarm = prewarm);
