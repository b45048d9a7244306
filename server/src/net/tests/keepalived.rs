//! Interoperation with keepalived 2.2.7 (Debian's), the daemon havip replaces: a
//! keepalived backup in one namespace accepts the adverts an AdvertSocket sends from the
//! other (it stays backup), and once they stop it becomes master and its adverts decode
//! here. keepalived is required (CI installs it); a missing one fails the test.

use crate::net::Netlink;
use crate::net::mmsg::RecvBatch;
use crate::net::socket::{AdvertSocket, RECV_BUF_LEN};
use crate::net::testns::{NetNs, ifindex, ipv4_pair, skip, usable_link_local};
use havip_vrrp::packet::{
    AdvertFields, Auth, ChecksumForm, DecodeContext, EncodeContext, MULTICAST_V4, MULTICAST_V6,
    check_ttl, decode, encode,
};
use havip_vrrp::types::{AdvertInterval, Family, Version, Vrid};
use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::{sleep, timeout};

/// keepalived running in a namespace, stopped (SIGTERM, so its VRRP child stops too) when
/// dropped.
struct Keepalived {
    child: Child,
    dir: PathBuf,
}

impl Keepalived {
    fn start(ns: &NetNs, config: &str) -> Keepalived {
        let dir = std::env::temp_dir().join(format!("havip-net-keepalived-{}", ns.name()));
        fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("keepalived.conf");
        fs::write(&conf, config).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns.name(),
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-f",
            ])
            .arg(&conf)
            .arg("-p")
            .arg(dir.join("keepalived.pid"))
            .arg("-r")
            .arg(dir.join("vrrp.pid"))
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .expect("keepalived must be installed (apt-get install keepalived)");
        Keepalived { child, dir }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn advert(vrid: u8, vips: &[IpAddr], src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let version = match src {
        IpAddr::V4(_) => Version::V2,
        IpAddr::V6(_) => Version::V3,
    };
    let fields = AdvertFields {
        version,
        vrid: Vrid::new(vrid).unwrap(),
        priority: 200,
        interval: AdvertInterval::from_secs(1).unwrap(),
        addresses: vips,
        auth: &Auth::None,
    };
    let ctx = EncodeContext {
        src,
        dst,
        v3_ipv4_checksum: ChecksumForm::PseudoHeader,
    };
    let mut out = Vec::new();
    encode(&fields, &ctx, &mut out).unwrap();
    out
}

const CONFIG: &str = "\
global_defs {
    router_id havip-net-test
}
vrrp_instance v4 {
    state BACKUP
    interface vb
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
}
vrrp_instance v6 {
    state BACKUP
    interface vb
    virtual_router_id 52
    priority 100
    advert_int 1
    virtual_ipaddress {
        fe80::200:5eff:fe00:234/64
        2001:db8::100/64
    }
}
";

#[test]
fn keepalived_accepts_our_adverts_and_we_decode_its_own() {
    if skip("keepalived_accepts_our_adverts_and_we_decode_its_own") {
        return;
    }
    let (a, b) = ipv4_pair();
    let src4: IpAddr = "192.0.2.1".parse().unwrap();
    let group4 = IpAddr::V4(MULTICAST_V4);
    let group6 = IpAddr::V6(MULTICAST_V6);
    let v4 = advert(51, &["192.0.2.100".parse().unwrap()], src4, group4);

    let keepalived = Keepalived::start(&b, CONFIG);
    let heard = a.run(|| async {
        let nl = Netlink::connect().await.unwrap();
        let src6 = IpAddr::V6(usable_link_local(&nl, "va").await);
        let vips6: [IpAddr; 2] = [
            "fe80::200:5eff:fe00:234".parse().unwrap(),
            "2001:db8::100".parse().unwrap(),
        ];
        let v6 = advert(52, &vips6, src6, group6);
        let s4 = AdvertSocket::open(Family::Ipv4, ifindex("va"), "va").unwrap();
        let s6 = AdvertSocket::open(Family::Ipv6, ifindex("va"), "va").unwrap();
        s4.join_multicast().unwrap();
        s6.join_multicast().unwrap();

        // A backup at priority 100 takes over after 3.6 s without adverts: 6 s of ours
        // must keep it backup.
        for _ in 0..6 {
            s4.send(src4, group4, &v4).unwrap();
            s6.send(src6, group6, &v6).unwrap();
            sleep(Duration::from_secs(1)).await;
        }
        let log = keepalived.log();
        assert!(
            log.contains("(v4) Entering BACKUP STATE"),
            "keepalived did not start:\n{log}"
        );
        assert!(
            !log.contains("MASTER"),
            "keepalived ignored our adverts:\n{log}"
        );
        assert!(
            !log.contains("received an"),
            "keepalived complained:\n{log}"
        );

        // Silence: keepalived becomes master, and its adverts decode here.
        let mut heard = Vec::new();
        let mut batch = RecvBatch::new(1, RECV_BUF_LEN);
        for socket in [&s4, &s6] {
            timeout(Duration::from_secs(15), socket.recv_batch(&mut batch))
                .await
                .expect("keepalived sent no advert")
                .unwrap();
            let r = socket.received(&batch, 0).unwrap().unwrap();
            let buf = batch.buffer(0);
            check_ttl(r.ttl).unwrap();
            let ctx = DecodeContext {
                family: socket.family(),
                src: r.src,
                dst: r.dst,
                auth: &Auth::None,
            };
            let decoded = decode(r.message(buf), &ctx)
                .unwrap_or_else(|e| panic!("keepalived's advert does not decode: {e}"));
            heard.push((r.src, r.dst, decoded.vrid, decoded.priority));
        }
        heard
    });
    assert_eq!(heard[0], ("192.0.2.2".parse().unwrap(), group4, 51, 100));
    assert!(matches!(heard[1].0, IpAddr::V6(a) if havip_vrrp::config::is_link_local(&a)));
    assert_eq!((heard[1].1, heard[1].2, heard[1].3), (group6, 52, 100));
    let log = keepalived.log();
    assert!(log.contains("(v4) Entering MASTER STATE"), "{log}");
}
