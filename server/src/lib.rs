//! havipd: the havip daemon. The engine ([`havip_vrrp`]) decides, the runtime carries out,
//! the API translates, the store records.

pub mod events;
pub mod net;
pub mod spec;
pub mod store;
