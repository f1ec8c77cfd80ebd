//! Where outbound connections may go: the allow-list grammar and the
//! egress address classes, with no I/O.
//!
//! Policy:
//! - A destination a guest names is first matched against an
//!   [`HttpAllowList`] (name, wildcard, address or block, and port); no rule,
//!   no connection.
//! - Every address it resolves to is then checked against an [`Egress`]
//!   rule before any connection is made; for an allow-list, non-public
//!   addresses (loopback, private, link-local, ...) are refused unless a
//!   rule names them by address or `allow_private` is set.
//! - The host's own connections (worker, server API) go where the operator
//!   configured them, [`Unrestricted`].
//!
//! Invariant: nothing in here does I/O, resolves a name or depends on the
//! runtime: the network side ([`crate::net`]) calls it, and it can be
//! tested on its own.

mod allow_list;
mod egress;

pub use self::allow_list::{HttpAllowList, HttpRule};
pub(crate) use self::egress::in_net;
pub use self::egress::{Egress, Unrestricted};
