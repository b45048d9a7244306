//! VRRPv3 (RFC 9568) over IPv4: an IPv4 datagram as the raw socket returns it, decoded as
//! the runtime does, in both checksum forms, with the version forced to 3 unless the flags
//! byte says otherwise. Input layout and properties: see havip_fuzz (fuzz/src/lib.rs).

#![no_main]

use havip_vrrp::Version;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| havip_fuzz::ipv4(data, Version::V3));
