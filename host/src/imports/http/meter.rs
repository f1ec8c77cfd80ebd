//! Host memory of the `wasi:http` resources a guest holds.
//!
//! wasmtime-wasi-http keeps a guest's fields, outgoing requests and bodies,
//! and responses in the job's resource table, as its own types, with no
//! hook on creation or drop. So instead of charging each one, the meter
//! *measures* the table: before every `wasi:http` call (the
//! `WasiHttpView::http` accessor runs first in each), it adds up what every
//! HTTP entry holds and sizes one [`Charge`] per kind to it. What the host
//! holds for requests in flight and response bodies outside the table is
//! charged by the send hook in `http.rs` ([`IN_FLIGHT_BYTES`],
//! [`RESPONSE_BUFFER_BYTES`]).
//!
//! Bound: once a measure finds the budget exceeded, that call and every
//! later `wasi:http` call fail (they see an empty table, `state.rs`), and
//! the job ends. So only the one call after the last measure under the
//! limit adds unmeasured memory: at most what one call can carry (the
//! hostcall fuel, 1 MiB; a fields value is also capped at
//! wasmtime-wasi-http's 128 KiB field limit). A job's `wasi:http` memory
//! stays within its host-memory budget plus 1 MiB and one body chunk
//! ([`BODY_CHUNK_BYTES`]).
//!
//! Cost: one pass over the table per `wasi:http` call; the table holds at
//! most `JobLimits::max_resources` (1,024) entries.

use std::collections::HashSet;

use http::HeaderMap;
use wasmtime::component::ResourceTable;
use wasmtime_wasi_http::FieldMap;
use wasmtime_wasi_http::p2::bindings::http::types::{Method, Scheme};
use wasmtime_wasi_http::p2::body::HostOutgoingBody;
use wasmtime_wasi_http::p2::types::{
    HostFutureIncomingResponse, HostIncomingResponse, HostOutgoingRequest,
};

use super::header_bytes;
use crate::config::net::{BODY_CHUNK_BYTES, ENTRY_OVERHEAD};
use crate::host_memory::{Charge, HostMemory, MemoryKind};

/// The charges for a job's `wasi:http` resources, one per kind.
pub(crate) struct HttpMeter {
    fields: Charge,
    requests: Charge,
    responses: Charge,
}

impl HttpMeter {
    pub(crate) fn new(memory: &HostMemory) -> Self {
        Self {
            fields: memory.empty(MemoryKind::HttpFields),
            requests: memory.empty(MemoryKind::HttpRequests),
            responses: memory.empty(MemoryKind::HttpResponses),
        }
    }

    /// Measures every `wasi:http` entry of `table` and resizes the charges.
    /// A refused resize is recorded in the budget, which ends the job.
    pub(crate) fn measure(&mut self, table: &mut ResourceTable) {
        // Header maps are shared between clones (`fields.clone`, the
        // `headers` child of a request); count each once.
        let mut seen: HashSet<*const HeaderMap> = HashSet::new();
        let mut headers = |map: &HeaderMap| {
            if seen.insert(map as *const HeaderMap) {
                header_bytes(map)
            } else {
                0
            }
        };
        let (mut fields, mut requests, mut responses) = (0u64, 0u64, 0u64);
        for entry in table.iter_mut() {
            if let Some(map) = entry.downcast_ref::<FieldMap>() {
                fields += ENTRY_OVERHEAD + headers(map);
            } else if let Some(request) = entry.downcast_ref::<HostOutgoingRequest>() {
                requests += ENTRY_OVERHEAD
                    + method_bytes(&request.method)
                    + request.scheme.as_ref().map_or(0, scheme_bytes)
                    + request.authority.as_ref().map_or(0, |a| a.len() as u64)
                    + request
                        .path_with_query
                        .as_ref()
                        .map_or(0, |p| p.len() as u64)
                    + headers(&request.headers)
                    + if request.body.is_some() {
                        BODY_CHUNK_BYTES as u64
                    } else {
                        0
                    };
            } else if entry.downcast_ref::<HostOutgoingBody>().is_some() {
                requests += ENTRY_OVERHEAD + BODY_CHUNK_BYTES as u64;
            } else if let Some(response) = entry.downcast_ref::<HostIncomingResponse>() {
                responses += ENTRY_OVERHEAD + headers(&response.headers);
            } else if let Some(HostFutureIncomingResponse::Ready(Ok((response, _)))) =
                entry.downcast_ref::<HostFutureIncomingResponse>()
            {
                responses += ENTRY_OVERHEAD + headers(response.headers());
            }
        }
        // Shrink before growing: fields moved into a request must not
        // count twice. Refusals are recorded in the budget; the job ends
        // on them.
        let mut sized = [
            (&mut self.fields, fields),
            (&mut self.requests, requests),
            (&mut self.responses, responses),
        ];
        sized.sort_by_key(|(charge, bytes)| *bytes > charge.bytes());
        for (charge, bytes) in sized {
            let _ = charge.resize(bytes);
        }
    }
}

fn method_bytes(method: &Method) -> u64 {
    match method {
        Method::Other(other) => other.len() as u64,
        _ => 0,
    }
}

fn scheme_bytes(scheme: &Scheme) -> u64 {
    match scheme {
        Scheme::Other(other) => other.len() as u64,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_measured_once_per_map() {
        let budget = HostMemory::new(1 << 20);
        let mut meter = HttpMeter::new(&budget);
        let mut table = ResourceTable::new();
        let mut hooks = super::super::HttpPolicy::new(&Default::default(), budget.clone());
        let mut fields = FieldMap::new_mutable(128 << 10);
        fields
            .append(&mut hooks, "x-big".into(), vec![b'a'; 10_000])
            .unwrap();
        let shared = fields.clone();
        let a = table.push(fields).unwrap();
        let _b = table.push(shared).unwrap();
        meter.measure(&mut table);
        let one = ENTRY_OVERHEAD + ENTRY_OVERHEAD + 5 + 10_000;
        assert_eq!(budget.used(), one + ENTRY_OVERHEAD);
        table.delete(a).unwrap();
        meter.measure(&mut table);
        assert_eq!(budget.used(), one);
        drop(meter);
        assert_eq!(budget.used(), 0);
    }
}
