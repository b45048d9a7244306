//! The frame builders cross-checked against Wireshark's dissectors: frames are written to a
//! pcap file, read back with `tshark`, and every field it reports must be the one meant.
//! tshark is required (CI installs it); a missing tshark fails the test.

use crate::net::arp::gratuitous_arp;
use crate::net::ndisc::unsolicited_na_frame;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static FILES: AtomicU32 = AtomicU32::new(0);

/// A pcap file (libpcap format, microsecond timestamps) with `frames` of `linktype`.
fn pcap(linktype: u32, frames: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&linktype.to_le_bytes());
    for (i, frame) in frames.iter().enumerate() {
        let len = u32::try_from(frame.len()).unwrap();
        out.extend_from_slice(&u32::try_from(i).unwrap().to_le_bytes()); // seconds
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(frame);
    }
    out
}

/// tshark's values of `fields` for each frame of the pcap, one Vec per frame.
fn tshark_fields(pcap_bytes: &[u8], fields: &[&str]) -> Vec<Vec<String>> {
    let path = std::env::temp_dir().join(format!(
        "havip-net-tshark-{}-{}.pcap",
        std::process::id(),
        FILES.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, pcap_bytes).unwrap();
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(&path)
        .args(["-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output();
    let _ = std::fs::remove_file(&path);
    let out = out.expect("tshark must be installed (apt-get install tshark)");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

#[test]
fn tshark_reads_gratuitous_arp() {
    let mac = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x33];
    let frame = gratuitous_arp(mac, Ipv4Addr::new(192, 0, 2, 100));
    let fields = [
        "eth.dst",
        "eth.src",
        "arp.opcode",
        "arp.isgratuitous",
        "arp.src.hw_mac",
        "arp.src.proto_ipv4",
        "arp.dst.hw_mac",
        "arp.dst.proto_ipv4",
    ];
    let rows = tshark_fields(&pcap(1, &[&frame]), &fields);
    assert_eq!(
        rows,
        vec![vec![
            "ff:ff:ff:ff:ff:ff",
            "00:00:5e:00:01:33",
            "1",
            "1",
            "00:00:5e:00:01:33",
            "192.0.2.100",
            "ff:ff:ff:ff:ff:ff",
            "192.0.2.100",
        ]]
    );
}

#[test]
fn tshark_reads_unsolicited_neighbour_advertisements() {
    let mac = [0x00, 0x00, 0x5e, 0x00, 0x02, 0x07];
    let target: Ipv6Addr = "2001:db8::7".parse().unwrap();
    let with_r = unsolicited_na_frame(mac, target, true);
    let without_r = unsolicited_na_frame(mac, target, false);
    let fields = [
        "eth.dst",
        "eth.src",
        "ipv6.src",
        "ipv6.dst",
        "ipv6.hlim",
        "icmpv6.type",
        "icmpv6.code",
        "icmpv6.checksum.status",
        "icmpv6.nd.na.flag.r",
        "icmpv6.nd.na.flag.s",
        "icmpv6.nd.na.flag.o",
        "icmpv6.nd.na.target_address",
        "icmpv6.opt.type",
        "icmpv6.opt.linkaddr",
    ];
    let row = |r: &str| -> Vec<String> {
        [
            "33:33:00:00:00:01",
            "00:00:5e:00:02:07",
            "2001:db8::7",
            "ff02::1",
            "255",
            "136",
            "0",
            "1", // checksum status: good
            r,
            "0",
            "1",
            "2001:db8::7",
            "2",
            "00:00:5e:00:02:07",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    // As Ethernet frames, the way they go on the wire.
    let rows = tshark_fields(&pcap(1, &[&with_r, &without_r]), &fields);
    assert_eq!(rows, vec![row("1"), row("0")]);

    // And as raw IPv6 packets (linktype 101), without the Ethernet header.
    let rows = tshark_fields(&pcap(101, &[&with_r[14..]]), &fields[2..]);
    assert_eq!(rows, vec![row("1")[2..].to_vec()]);
}
