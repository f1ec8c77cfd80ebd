//! The only unsafe code of the FFI transport: loading `liblivekit_ffi.so`
//! and calling its four C entry points.
//!
//! ```c
//! void     livekit_ffi_initialize(void (*cb)(const uint8_t *, size_t), bool capture_logs,
//!                                 const char *sdk, const char *sdk_version);
//! uint64_t livekit_ffi_request(const uint8_t *data, size_t len,
//!                              const uint8_t **res_ptr, size_t *res_len);
//! bool     livekit_ffi_drop_handle(uint64_t handle);
//! ```
//!
//! Invariants:
//! - the library is loaded once per process and never unloaded (its threads
//!   call [`on_event`] for as long as the process lives), so [`Library`] is
//!   leaked and every function pointer stays valid;
//! - [`on_event`] copies the event bytes into a channel and returns: it
//!   never blocks, never panics across the C boundary, and ignores events
//!   once the receiver is gone;
//! - every response handle is dropped once its bytes are copied;
//! - pointers read here come from the library, which keeps them valid until
//!   the handle owning them is dropped: [`take_buffer`] and [`take_frame`]
//!   take that owner (an `OwnedHandle`, which releases the handle through
//!   [`Library::drop_handle`] when dropped), copy first, then drop it.

use std::ffi::{CString, c_char};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::mpsc;

use prost::Message as _;

use super::proto::{self, ffi_request, ffi_response};

type Callback = extern "C" fn(*const u8, usize);
type InitializeFn = unsafe extern "C" fn(Callback, bool, *const c_char, *const c_char);
type RequestFn = unsafe extern "C" fn(*const u8, usize, *mut *const u8, *mut usize) -> u64;
type DropHandleFn = unsafe extern "C" fn(u64) -> bool;

/// Where [`on_event`] puts event bytes; set once, by [`Library::initialize`].
static EVENTS: OnceLock<mpsc::Sender<Vec<u8>>> = OnceLock::new();

/// The loaded library and its entry points.
pub(super) struct Library {
    request: RequestFn,
    drop_handle: DropHandleFn,
    initialize: InitializeFn,
    /// Keeps the library mapped; never dropped (see the module docs).
    _lib: libloading::Library,
}

impl Library {
    /// Loads the library at `path` and resolves its entry points.
    pub(super) fn load(path: &Path) -> Result<&'static Library, String> {
        // SAFETY: loading runs the library's initialisers. This is LiveKit's
        // own client library, built to be loaded this way (the Python SDK
        // does the same with ctypes); it has no initialisers with
        // preconditions on the host process.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| e.to_string())?;
        // SAFETY: the types match the C declarations in the module docs
        // (rust-sdks `livekit-ffi/src/cabi.rs`); the pointers are copied out
        // and stay valid because the library is never unloaded.
        let (initialize, request, drop_handle) = unsafe {
            let initialize = *lib
                .get::<InitializeFn>(b"livekit_ffi_initialize\0")
                .map_err(|e| e.to_string())?;
            let request = *lib
                .get::<RequestFn>(b"livekit_ffi_request\0")
                .map_err(|e| e.to_string())?;
            let drop_handle = *lib
                .get::<DropHandleFn>(b"livekit_ffi_drop_handle\0")
                .map_err(|e| e.to_string())?;
            (initialize, request, drop_handle)
        };
        Ok(Box::leak(Box::new(Library {
            request,
            drop_handle,
            initialize,
            _lib: lib,
        })))
    }

    /// Installs the process-wide callback; events arrive on `events`.
    /// Called once per process (the client guarantees it).
    pub(super) fn initialize(&self, events: mpsc::Sender<Vec<u8>>, sdk_version: &str) {
        if EVENTS.set(events).is_err() {
            tracing::warn!("the LiveKit FFI library was initialised twice; ignoring");
            return;
        }
        let sdk = c"rust";
        let version = CString::new(sdk_version.replace('\0', "")).unwrap_or_default();
        // SAFETY: `on_event` matches the callback type and is valid for the
        // life of the process; the strings are NUL-terminated and outlive the
        // call (the library copies them).
        unsafe { (self.initialize)(on_event, true, sdk.as_ptr(), version.as_ptr()) }
    }

    /// Sends one serialized `FfiRequest`; returns the serialized
    /// `FfiResponse`, or `None` when the library refused the request.
    pub(super) fn request(&self, request: &[u8]) -> Option<Vec<u8>> {
        let mut ptr: *const u8 = std::ptr::null();
        let mut len: usize = 0;
        // SAFETY: `request` is a valid slice for the call; `ptr` and `len`
        // are valid out-pointers. The library copies what it needs.
        let handle = unsafe { (self.request)(request.as_ptr(), request.len(), &mut ptr, &mut len) };
        if handle == 0 {
            return None;
        }
        // SAFETY: the library keeps `len` bytes at `ptr` alive until
        // `handle` is dropped, which happens right after the copy.
        let response = unsafe { copy_bytes(ptr, len) };
        self.drop_handle(handle);
        Some(response)
    }

    /// Releases a handle; `false` when the library did not know it.
    pub(super) fn drop_handle(&self, handle: u64) -> bool {
        // SAFETY: any value is accepted; unknown handles return false.
        unsafe { (self.drop_handle)(handle) }
    }
}

/// Copies the bytes of a buffer the library handed over (an `OwnedBuffer`),
/// then releases it by dropping `handle`, its owner. Without an owner
/// nothing is owned, so nothing is read.
pub(super) fn take_buffer<Owner>(handle: Option<Owner>, info: &proto::BufferInfo) -> Vec<u8> {
    let (Some(handle), Ok(len)) = (handle, usize::try_from(info.data_len)) else {
        return Vec::new();
    };
    // SAFETY: the library keeps `data_len` bytes at `data_ptr` alive until
    // the buffer's handle is released, which happens after the copy.
    let bytes = unsafe { copy_bytes(info.data_ptr as *const u8, len) };
    drop(handle);
    bytes
}

/// Copies the samples of an audio frame the library handed over (an
/// `OwnedAudioFrameBuffer`), then releases it by dropping `handle`, its
/// owner. Without an owner nothing is owned, so nothing is read.
pub(super) fn take_frame<Owner>(
    handle: Option<Owner>,
    info: &proto::AudioFrameBufferInfo,
) -> Vec<i16> {
    let Some(handle) = handle else {
        return Vec::new();
    };
    let count = info.samples_per_channel as usize * info.num_channels as usize;
    // SAFETY: the library keeps the frame's interleaved 16-bit samples
    // alive until its handle is released, which happens after the copy.
    let samples = unsafe { copy_samples(info.data_ptr as *const i16, count) };
    drop(handle);
    samples
}

/// Copies `len` bytes at `ptr` (empty for a null pointer or zero length).
///
/// # Safety
/// `ptr` must point to `len` readable bytes (it comes from an `OwnedBuffer`
/// or a response whose handle is not yet dropped).
unsafe fn copy_bytes(ptr: *const u8, len: usize) -> Vec<u8> {
    if ptr.is_null() || len == 0 {
        return Vec::new();
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
}

/// Copies `count` 16-bit samples at `ptr` (an audio frame buffer).
///
/// # Safety
/// `ptr` must point to `count` readable, 2-byte aligned `i16`s (an
/// `OwnedAudioFrameBuffer` whose handle is not yet dropped).
unsafe fn copy_samples(ptr: *const i16, count: usize) -> Vec<i16> {
    if ptr.is_null() || count == 0 || !ptr.is_aligned() {
        return Vec::new();
    }
    // SAFETY: guaranteed by the caller; alignment checked above.
    unsafe { std::slice::from_raw_parts(ptr, count) }.to_vec()
}

/// The callback given to the library: copies one serialized `FfiEvent`
/// into the channel. Runs on the library's threads; never blocks.
extern "C" fn on_event(data: *const u8, len: usize) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the library passes `len` readable bytes, valid for the call.
        let bytes = unsafe { copy_bytes(data, len) };
        if let Some(events) = EVENTS.get() {
            // An unbounded channel: sending never blocks. Fails only when
            // the pump is gone, and then there is nobody to tell.
            let _ = events.send(bytes);
        }
    });
}

/// Sends one request and decodes its response.
pub(super) fn request_sync(
    lib: &Library,
    request: ffi_request::Message,
) -> Result<ffi_response::Message, String> {
    let bytes = proto::FfiRequest {
        message: Some(request),
    }
    .encode_to_vec();
    let response = lib
        .request(&bytes)
        .ok_or("the LiveKit client library rejected the request")?;
    match proto::FfiResponse::decode(response.as_slice()) {
        Ok(proto::FfiResponse { message: Some(m) }) => Ok(m),
        Ok(_) => Err("the LiveKit client library sent an unexpected response".into()),
        Err(err) => Err(format!(
            "undecodable response from the LiveKit client library: {err}"
        )),
    }
}
