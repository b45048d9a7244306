#!/usr/bin/env python3
"""Writes the seed corpus under fuzz/corpus/: real VRRP packets and real keepalived
configurations. Run from anywhere; it overwrites the seed files it names and leaves every
other corpus file (crash inputs kept as regressions) alone.

The packets:
- captured from keepalived 2.2.7 (Debian) in a network namespace: v2 with PASS "s3cret",
  v3/IPv4 (pseudo-header checksum, keepalived's default) with 1 and 3 addresses, v3/IPv6
  with 3 addresses, each as a master and as the priority-0 advert it sends when stopped;
- the engine's unit-test vectors (server/vrrp/src/packet/testutil.rs): holo-vrrp's v2
  packet and keepalived's v3 packet with the message-only checksum;
- frames of the tshark cross-check (server/vrrp/tests/tshark_crosscheck.rs): an 8-byte
  PASS, the 4095 cs interval, a global IPv6 address after the link-local one.

Each decoder input is a flags byte, then the packet (see fuzz/src/lib.rs).
"""

import pathlib
import struct

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
CORPUS = FUZZ / "corpus"

# IPv4 datagrams as the raw socket returns them, captured from keepalived.
KEEPALIVED_V4 = {
    "keepalived-v2-pass": "45c0002c00010000ff70188dc0000201e00000122133c802010154e4c0000264c00002657333637265740000",
    "keepalived-v2-pass-prio0": "45c0002c00040000ff70188ac0000201e00000122133000201011ce5c0000264c00002657333637265740000",
    "keepalived-v3-1vip": "45c0002000010000ff701899c0000201e0000012313496010032d398c000026e",
    "keepalived-v3-1vip-prio0": "45c00020000a0000ff701890c0000201e00000123134000100326999c000026e",
    "keepalived-v3-3vips": "45c0002800010000ff701891c0000201e0000012313564030064805dc0000278c0000279c000027a",
    "keepalived-v3-3vips-prio0": "45c0002800040000ff70188ec0000201e0000012313500030064e45dc0000278c0000279c000027a",
}

# Source and destination (from the IPv6 header), then the VRRP message, captured from
# keepalived.
KEEPALIVED_V6 = {
    "keepalived-v3-ipv6": "fe800000000000000000000000000001ff020000000000000000000000000012313678030064fd32fe80000000000000000000000000005420010db800000000000000000000005420010db8000000000000000000000055",
    "keepalived-v3-ipv6-prio0": "fe800000000000000000000000000001ff0200000000000000000000000000123136000300647533fe80000000000000000000000000005420010db800000000000000000000005420010db8000000000000000000000055",
}

FIX_CHECKSUM = 0x01
PSEUDO_HEADER = 0x02
KEEP_VERSION = 0x80


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def seal(msg: bytes, pseudo: bytes = b"") -> bytes:
    msg = bytearray(msg)
    msg[6:8] = b"\0\0"
    msg[6:8] = struct.pack(">H", checksum(pseudo + bytes(msg)))
    return bytes(msg)


def pseudo4(src: bytes, dst: bytes, length: int) -> bytes:
    return src + dst + bytes([0, 112]) + struct.pack(">H", length)


def pseudo6(src: bytes, dst: bytes, length: int) -> bytes:
    return src + dst + struct.pack(">I", length) + bytes([0, 0, 0, 112])


def ipv4(src: bytes, dst: bytes, payload: bytes) -> bytes:
    header = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(payload), 0, 0, 255, 112, 0, src, dst))
    header[10:12] = struct.pack(">H", checksum(bytes(header)))
    return bytes(header) + payload


def v4(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def v6(text: str) -> bytes:
    import ipaddress

    return ipaddress.IPv6Address(text).packed


GROUP4 = v4("224.0.0.18")
GROUP6 = v6("ff02::12")


def v2(vrid, prio, secs, addrs, auth_type, auth_data):
    return seal(bytes([0x21, vrid, prio, len(addrs), auth_type, secs, 0, 0]) + b"".join(addrs) + auth_data)


def v3(vrid, prio, centis, addrs, pseudo=None):
    msg = bytes([0x31, vrid, prio, len(addrs)]) + struct.pack(">H", centis) + b"\0\0" + b"".join(addrs)
    if pseudo is None:
        return seal(msg)
    src, dst = pseudo
    make = pseudo4 if len(src) == 4 else pseudo6
    return seal(msg, make(src, dst, len(msg)))


def write(target: str, name: str, data: bytes) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def packets() -> None:
    for name, hexed in KEEPALIVED_V4.items():
        datagram = bytes.fromhex(hexed)
        target = "decode_v2" if datagram[20] >> 4 == 2 else "decode_v3_ipv4"
        write(target, name, bytes([0]) + datagram)
    for name, hexed in KEEPALIVED_V6.items():
        write("decode_v3_ipv6", name, bytes([0]) + bytes.fromhex(hexed))

    # The unit-test vectors, in the IPv4 datagram they would arrive in.
    holo = bytes.fromhex("21331e010001b5c50a0001050000000000000000")
    write("decode_v2", "holo-v2", bytes([0]) + ipv4(v4("10.0.1.1"), GROUP4, holo))
    message_only = bytes.fromhex("3133c80100644402c0000264")
    write("decode_v3_ipv4", "keepalived-v3-message-only", bytes([0]) + ipv4(v4("192.0.2.1"), GROUP4, message_only))

    # The cross-check's frames.
    src4 = v4("192.0.2.1")
    three = [v4("10.0.1.5"), v4("10.0.1.6"), v4("192.0.2.200")]
    write("decode_v2", "tshark-v2-3vips-pass8", bytes([0]) + ipv4(src4, GROUP4, v2(255, 0, 255, three, 1, b"12345678")))
    bad = bytearray(v2(9, 100, 1, [v4("10.0.9.1")], 0, bytes(8)))
    bad[6] ^= 0x5A
    write("decode_v2", "tshark-v2-bad-checksum", bytes([0]) + ipv4(src4, GROUP4, bytes(bad)))
    write("decode_v2", "fix-checksum", bytes([FIX_CHECKSUM]) + ipv4(src4, GROUP4, bytes(bad)))
    write("decode_v2", "v3-kept-as-v3", bytes([KEEP_VERSION]) + ipv4(src4, GROUP4, message_only))
    pseudo = v3(1, 255, 4095, three, (src4, GROUP4))
    write("decode_v3_ipv4", "tshark-v3-3vips-4095cs", bytes([0]) + ipv4(src4, GROUP4, pseudo))
    write("decode_v3_ipv4", "fix-checksum-pseudo", bytes([FIX_CHECKSUM | PSEUDO_HEADER]) + ipv4(src4, GROUP4, pseudo))
    write("decode_v3_ipv4", "v2-kept-as-v2", bytes([KEEP_VERSION]) + ipv4(v4("10.0.1.1"), GROUP4, holo))
    src6 = v6("fe80::1")
    addrs6 = [v6("fe80::200:5eff:fe00:22a"), v6("2001:db8::1"), v6("2001:db8:0:1::ff")]
    write("decode_v3_ipv6", "tshark-v3-ipv6-3addrs", bytes([0]) + src6 + GROUP6 + v3(42, 150, 1, addrs6, (src6, GROUP6)))
    other = v6("fe80::abcd:1")
    write("decode_v3_ipv6", "tshark-v3-ipv6-1addr", bytes([0]) + other + GROUP6 + v3(200, 100, 25, [v6("fe80::1")], (other, GROUP6)))
    global_first = v3(8, 100, 100, [v6("2001:db8::1"), v6("fe80::5")], (src6, GROUP6))
    write("decode_v3_ipv6", "global-first-address", bytes([0]) + src6 + GROUP6 + global_first)


# A main file and the files it includes, in the keepalived_import target's layout: parts
# separated by NUL, each later part's first line its path.
INCLUDES = (
    "global_defs {\n  router_id LB1\n}\ninclude conf.d/*.conf\ninclude /etc/keepalived/scripts/{a,b}.conf\n"
    "\0conf.d/web.conf\nvrrp_instance web {\n  interface eth0\n  virtual_router_id 7\n  priority 150\n"
    "  track_script {\n    chk_a\n  }\n  virtual_ipaddress {\n    192.0.2.10/24\n  }\n}\n"
    "\0scripts/a.conf\nvrrp_script chk_a {\n  script \"pidof haproxy\"\n  interval 2\n  weight -20\n}\n"
    "\0scripts/b.conf\n@main vrrp_sync_group G {\n  group {\n    web\n  }\n}\n"
)

CONDITIONAL = (
    "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  @main priority 150\n"
    "  @^main priority 100\n  advert_int 1\n  virtual_ipaddress {\n    10.0.0.100/24\n  }\n}\n"
)


def configs() -> None:
    target = "keepalived_import"
    for path in sorted((ROOT / "deploy" / "examples").glob("*/keepalived-*.conf")):
        write(target, f"example-{path.parent.name}-{path.name}", path.read_bytes())
    # The configuration in the HAVIP guide, as the guide prints it (its braces were lost
    # in the copy, which makes it a good malformed seed too).
    guide = (pathlib.Path("/work/shared/seed-keepalived-havip-guide.txt")).read_text()
    start = guide.rindex("\n", 0, guide.index("! Configuration File for keepalived")) + 1
    end = guide.index("Step 5:")
    write(target, "havip-guide.conf", "\n".join(l[4:] for l in guide[start:end].splitlines()).encode())
    # What the end-to-end tests give keepalived (tests/src/keepalived.rs).
    write(
        target,
        "e2e-unicast-pass.conf",
        b"global_defs {\n  router_id a\n  vrrp_version 2\n  enable_script_security\n}\n"
        b"vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n"
        b"  priority 100\n  advert_int 1\n  garp_master_delay 1\n  nopreempt\n"
        b"  authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }\n"
        b"  unicast_src_ip 10.0.0.1\n  unicast_peer {\n    10.0.0.2\n  }\n"
        b"  virtual_ipaddress {\n    10.0.0.100/24\n  }\n}\n",
    )
    # Every instance keyword the importer knows (cli/src/keepalived/tests.rs).
    tests = (ROOT / "cli" / "src" / "keepalived" / "tests.rs").read_text()
    start = tests.index('let text = r#"', tests.index("fn every_instance_keyword")) + len('let text = r#"')
    write(target, "every-instance-keyword.conf", tests[start : tests.index('"#;', start)].encode())
    write(target, "includes-globs-braces", INCLUDES.encode())
    write(target, "conditional-lines.conf", CONDITIONAL.encode())


if __name__ == "__main__":
    packets()
    configs()
