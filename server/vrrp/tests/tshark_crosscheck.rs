//! Cross-checks the encoder against Wireshark's VRRP dissector: packets havip builds are
//! written to pcap files, read back with `tshark`, and every field tshark reports must be
//! the one encoded, with the checksum marked good (or bad, for the one packet whose
//! checksum is deliberately wrong).
//!
//! tshark is a hard requirement: a missing tshark fails the test instead of skipping it,
//! so CI cannot pass without having run the cross-check.

// clippy.toml lets #[test] functions unwrap; the helpers here are test code as well, and a
// panic in them is a failed check, not a crashed daemon.
#![allow(clippy::unwrap_used)]

use havip_vrrp::packet::{
    AdvertFields, Auth, ChecksumForm, EncodeContext, IPPROTO_VRRP, MULTICAST_V4, MULTICAST_V6,
    REQUIRED_TTL, encode, internet_checksum,
};
use havip_vrrp::types::{AdvertInterval, Version, Vrid};
use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// Each `-e` field, in the order tshark prints them (names from `tshark -G fields`).
const FIELDS: &[&str] = &[
    "ip.ttl",
    "ip.proto",
    "ip.checksum.status",
    "ipv6.hlim",
    "ipv6.nxt",
    "vrrp.version",
    "vrrp.type",
    "vrrp.virt_rtr_id",
    "vrrp.prio",
    "vrrp.addr_count",
    "vrrp.auth_type",
    "vrrp.adver_int",
    "vrrp.short_adver_int",
    "vrrp.ip_addr",
    "vrrp.ipv6_addr",
    "vrrp.auth_string",
    "vrrp.checksum",
    "vrrp.checksum.status",
];

/// Wireshark's preference for the v3/IPv4 checksum without the pseudo-header (from
/// `tshark -G defaultprefs`).
const MESSAGE_ONLY_PREF: &str = "vrrp.v3_checksum_as_in_v2:TRUE";
/// IPv4 header checksums are not verified by default; ours should be.
const CHECK_IP_CHECKSUM_PREF: &str = "ip.check_checksum:TRUE";

/// What one packet should look like to tshark.
struct Expected {
    version: Version,
    vrid: u8,
    priority: u8,
    interval: AdvertInterval,
    addresses: Vec<IpAddr>,
    password: Option<&'static str>,
    checksum_good: bool,
}

/// A packet ready for the pcap, with what tshark must report for it.
struct Frame {
    name: &'static str,
    bytes: Vec<u8>,
    expected: Expected,
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(text: &str) -> IpAddr {
    IpAddr::V6(text.parse().unwrap())
}

fn secs(n: u8) -> AdvertInterval {
    AdvertInterval::from_secs(n).unwrap()
}

fn centis(n: u16) -> AdvertInterval {
    AdvertInterval::from_centis(n).unwrap()
}

/// An advertisement wrapped in the IP header it is sent with.
#[allow(clippy::too_many_arguments)]
fn frame(
    name: &'static str,
    version: Version,
    vrid: u8,
    priority: u8,
    interval: AdvertInterval,
    addresses: Vec<IpAddr>,
    password: Option<&'static str>,
    form: ChecksumForm,
    src: IpAddr,
) -> Frame {
    let auth = password.map_or(Auth::None, |p| Auth::pass(p).unwrap());
    let dst = match src {
        IpAddr::V4(_) => IpAddr::V4(MULTICAST_V4),
        IpAddr::V6(_) => IpAddr::V6(MULTICAST_V6),
    };
    let fields = AdvertFields {
        version,
        vrid: Vrid::new(vrid).unwrap(),
        priority,
        interval,
        addresses: &addresses,
        auth: &auth,
    };
    let ctx = EncodeContext {
        src,
        dst,
        v3_ipv4_checksum: form,
    };
    let mut msg = Vec::new();
    encode(&fields, &ctx, &mut msg).unwrap();
    Frame {
        name,
        bytes: ip_packet(src, dst, &msg),
        expected: Expected {
            version,
            vrid,
            priority,
            interval,
            addresses,
            password,
            checksum_good: true,
        },
    }
}

/// `frame` with its VRRP checksum broken, so tshark has something to call bad.
fn corrupted(mut f: Frame) -> Frame {
    let checksum_at = match f.bytes.first() {
        Some(b) if b >> 4 == 4 => 20 + 6,
        _ => 40 + 6,
    };
    f.bytes[checksum_at] ^= 0x5a;
    f.expected.checksum_good = false;
    f.name = "deliberately wrong checksum";
    f
}

/// RFC 791 / RFC 8200 headers as a VRRP router sends them: TTL / hop limit 255,
/// protocol / next header 112.
fn ip_packet(src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = u16::try_from(20 + payload.len()).unwrap().to_be_bytes();
            out.extend_from_slice(&[0x45, 0xc0, total[0], total[1], 0, 0, 0x40, 0]);
            out.extend_from_slice(&[REQUIRED_TTL, IPPROTO_VRRP, 0, 0]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
            let [hi, lo] = internet_checksum(&out).to_be_bytes();
            out[10] = hi;
            out[11] = lo;
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let len = u16::try_from(payload.len()).unwrap().to_be_bytes();
            out.extend_from_slice(&[0x6c, 0, 0, 0, len[0], len[1], IPPROTO_VRRP, REQUIRED_TTL]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        _ => panic!("mixed families"),
    }
    out.extend_from_slice(payload);
    out
}

/// A classic pcap file (not pcapng) of raw IP packets: link type 101, LINKTYPE_RAW.
fn write_pcap(path: &Path, frames: &[Frame]) {
    let mut file = Vec::new();
    file.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes()); // magic, microsecond stamps
    file.extend_from_slice(&2_u16.to_le_bytes()); // version 2.4
    file.extend_from_slice(&4_u16.to_le_bytes());
    file.extend_from_slice(&0_i32.to_le_bytes()); // GMT offset
    file.extend_from_slice(&0_u32.to_le_bytes()); // timestamp accuracy
    file.extend_from_slice(&65_535_u32.to_le_bytes()); // snap length
    file.extend_from_slice(&101_u32.to_le_bytes()); // LINKTYPE_RAW
    for (i, f) in frames.iter().enumerate() {
        let len = u32::try_from(f.bytes.len()).unwrap();
        file.extend_from_slice(&u32::try_from(i).unwrap().to_le_bytes()); // seconds
        file.extend_from_slice(&0_u32.to_le_bytes()); // microseconds
        file.extend_from_slice(&len.to_le_bytes()); // captured length
        file.extend_from_slice(&len.to_le_bytes()); // original length
        file.extend_from_slice(&f.bytes);
    }
    fs::write(path, file).unwrap();
}

/// A directory of its own under the system temp dir, removed when dropped (also when a
/// test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("havip-tshark-{tag}-{}-{nanos}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs tshark, failing loudly when it is not installed.
fn tshark(args: &[&str]) -> String {
    let output = match Command::new("tshark").args(args).output() {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "tshark not found: install it with `apt-get install -y tshark`; .ci/run does this"
        ),
        Err(e) => panic!("could not run tshark: {e}"),
    };
    assert!(
        output.status.success(),
        "tshark {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The numbers tshark uses for "Good" and "Bad" in `field`, looked up rather than assumed:
/// `tshark -G values` lists each value string as `V <field> <number> <text>`.
fn status_numbers(field: &str) -> (String, String) {
    let values = tshark(&["-G", "values"]);
    let lookup = |text: &str| {
        values
            .lines()
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .find(|cols| cols.len() == 4 && cols[0] == "V" && cols[1] == field && cols[3] == text)
            .map(|cols| cols[2].to_string())
            .unwrap_or_else(|| panic!("tshark -G values has no {text:?} for {field}"))
    };
    (lookup("Good"), lookup("Bad"))
}

/// Reads `pcap` with tshark and checks every frame against what was encoded.
fn check_with_tshark(pcap: &Path, frames: &[Frame], prefs: &[&str]) {
    let (vrrp_good, vrrp_bad) = status_numbers("vrrp.checksum.status");
    let (ip_good, _) = status_numbers("ip.checksum.status");

    let path = pcap.to_str().unwrap();
    let mut args = vec!["-n", "-r", path, "-T", "fields", "-E", "separator=/t"];
    for pref in prefs.iter().chain([&CHECK_IP_CHECKSUM_PREF]) {
        args.extend(["-o", pref]);
    }
    for field in FIELDS {
        args.extend(["-e", field]);
    }
    let out = tshark(&args);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), frames.len(), "tshark output:\n{out}");

    for (line, f) in lines.iter().zip(frames) {
        let values: HashMap<&str, &str> = FIELDS.iter().copied().zip(line.split('\t')).collect();
        let get = |field: &str| values.get(field).copied().unwrap_or("");
        let e = &f.expected;
        let ctx = format!("{} ({}): tshark said {values:?}", f.name, pcap.display());

        match e.addresses.first() {
            Some(IpAddr::V4(_)) => {
                assert_eq!(get("ip.ttl"), "255", "{ctx}");
                assert_eq!(get("ip.proto"), "112", "{ctx}");
                assert_eq!(get("ip.checksum.status"), ip_good, "{ctx}");
            }
            _ => {
                assert_eq!(get("ipv6.hlim"), "255", "{ctx}");
                assert_eq!(get("ipv6.nxt"), "112", "{ctx}");
            }
        }
        assert_eq!(get("vrrp.version"), e.version.number().to_string(), "{ctx}");
        assert_eq!(get("vrrp.type"), "1", "{ctx}");
        assert_eq!(get("vrrp.virt_rtr_id"), e.vrid.to_string(), "{ctx}");
        assert_eq!(get("vrrp.prio"), e.priority.to_string(), "{ctx}");
        assert_eq!(
            get("vrrp.addr_count"),
            e.addresses.len().to_string(),
            "{ctx}"
        );
        match e.version {
            Version::V2 => {
                let secs = e.interval.whole_secs().unwrap();
                assert_eq!(get("vrrp.adver_int"), secs.to_string(), "{ctx}");
                let auth_type = if e.password.is_some() { "1" } else { "0" };
                assert_eq!(get("vrrp.auth_type"), auth_type, "{ctx}");
                if let Some(password) = e.password {
                    assert_eq!(get("vrrp.auth_string"), password, "{ctx}");
                }
            }
            Version::V3 => {
                let centis = e.interval.centis().to_string();
                assert_eq!(get("vrrp.short_adver_int"), centis, "{ctx}");
            }
        }
        let listed = [get("vrrp.ip_addr"), get("vrrp.ipv6_addr")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .flat_map(|s| s.split(','))
            .map(|s| s.parse::<IpAddr>().unwrap())
            .collect::<Vec<_>>();
        assert_eq!(listed, e.addresses, "{ctx}");
        let status = if e.checksum_good {
            &vrrp_good
        } else {
            &vrrp_bad
        };
        assert_eq!(get("vrrp.checksum.status"), status.as_str(), "{ctx}");
    }
}

/// v2 with 1 and 3 VIPs (one with PASS), v3/IPv4 with the pseudo-header, v3/IPv6 with
/// several addresses, and one wrong checksum.
fn default_form_frames() -> Vec<Frame> {
    let src4 = v4(192, 0, 2, 1);
    let src6 = v6("fe80::1");
    let three = vec![v4(10, 0, 1, 5), v4(10, 0, 1, 6), v4(192, 0, 2, 200)];
    let pseudo = ChecksumForm::PseudoHeader;
    vec![
        frame(
            "v2, 1 VIP, no auth",
            Version::V2,
            51,
            30,
            secs(1),
            vec![v4(10, 0, 1, 5)],
            None,
            pseudo,
            v4(10, 0, 1, 1),
        ),
        frame(
            "v2, 3 VIPs, PASS",
            Version::V2,
            7,
            254,
            secs(3),
            three.clone(),
            Some("s3cret!"),
            pseudo,
            src4,
        ),
        frame(
            "v2, 3 VIPs, 8-byte PASS",
            Version::V2,
            255,
            0,
            secs(255),
            three.clone(),
            Some("12345678"),
            pseudo,
            src4,
        ),
        frame(
            "v3/IPv4 pseudo-header, 1 VIP",
            Version::V3,
            51,
            200,
            centis(100),
            vec![v4(192, 0, 2, 100)],
            None,
            pseudo,
            src4,
        ),
        frame(
            "v3/IPv4 pseudo-header, 3 VIPs",
            Version::V3,
            1,
            255,
            centis(4095),
            three,
            None,
            pseudo,
            src4,
        ),
        frame(
            "v3/IPv6, 3 addresses",
            Version::V3,
            42,
            150,
            centis(1),
            vec![
                v6("fe80::200:5eff:fe00:22a"),
                v6("2001:db8::1"),
                v6("2001:db8:0:1::ff"),
            ],
            None,
            pseudo,
            src6,
        ),
        frame(
            "v3/IPv6, 1 address",
            Version::V3,
            200,
            100,
            centis(25),
            vec![v6("fe80::1")],
            None,
            pseudo,
            v6("fe80::abcd:1"),
        ),
        corrupted(frame(
            "",
            Version::V2,
            9,
            100,
            secs(1),
            vec![v4(10, 0, 9, 1)],
            None,
            pseudo,
            src4,
        )),
    ]
}

/// v3/IPv4 with the checksum over the message only, and one wrong checksum.
fn message_only_frames() -> Vec<Frame> {
    let src4 = v4(192, 0, 2, 1);
    let form = ChecksumForm::MessageOnly;
    vec![
        frame(
            "v3/IPv4 message-only, 1 VIP",
            Version::V3,
            51,
            200,
            centis(100),
            vec![v4(192, 0, 2, 100)],
            None,
            form,
            src4,
        ),
        frame(
            "v3/IPv4 message-only, 2 VIPs",
            Version::V3,
            77,
            1,
            centis(1),
            vec![v4(198, 51, 100, 1), v4(198, 51, 100, 2)],
            None,
            form,
            v4(198, 51, 100, 10),
        ),
        corrupted(frame(
            "",
            Version::V3,
            3,
            100,
            centis(100),
            vec![v4(192, 0, 2, 3)],
            None,
            form,
            src4,
        )),
    ]
}

/// RFC 3768 §5.1, RFC 9568 §5.1 and §5.2.8: Wireshark reads the fields havip encodes, and
/// agrees the checksums (v2, v3 with the pseudo-header) are right.
#[test]
fn rfc9568_5_2_8_wireshark_agrees_with_the_encoder() {
    let dir = TempDir::new("default");
    let pcap = dir.0.join("vrrp.pcap");
    let frames = default_form_frames();
    write_pcap(&pcap, &frames);
    check_with_tshark(&pcap, &frames, &[]);
}

/// RFC 9568 §5.2.8: the message-only form for v3/IPv4 is what Wireshark computes when told
/// to checksum v3 as v2 does, and without that preference it is wrong, so the two forms
/// really differ.
#[test]
fn rfc9568_5_2_8_wireshark_agrees_with_the_message_only_form() {
    let dir = TempDir::new("message-only");
    let pcap = dir.0.join("vrrp-v3-message-only.pcap");
    let mut frames = message_only_frames();
    write_pcap(&pcap, &frames);
    check_with_tshark(&pcap, &frames, &[MESSAGE_ONLY_PREF]);

    for f in &mut frames {
        f.expected.checksum_good = false;
    }
    check_with_tshark(&pcap, &frames, &[]);
}
