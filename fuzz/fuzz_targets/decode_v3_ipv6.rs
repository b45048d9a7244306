//! VRRPv3 (RFC 9568) over IPv6: the source and destination addresses the runtime reads
//! from ancillary data, then the VRRP message, decoded with the version forced to 3 unless
//! the flags byte says otherwise. Input layout and properties: see havip_fuzz
//! (fuzz/src/lib.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| havip_fuzz::ipv6(data));
