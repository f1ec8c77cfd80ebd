//! LiveKit's built-in RPC error codes (the SDKs' `RpcError` constants),
//! the ones transports answer calls with themselves.

/// The callee has no handler for the method.
pub const UNSUPPORTED_METHOD: u32 = 1400;
/// No participant has the destination identity.
pub const RECIPIENT_NOT_FOUND: u32 = 1401;
/// The callee did not answer within the call's response timeout.
pub const RESPONSE_TIMEOUT: u32 = 1502;
/// The callee left before it answered.
pub const RECIPIENT_DISCONNECTED: u32 = 1503;
/// The call could not be sent (or delivered).
pub const SEND_FAILED: u32 = 1505;
