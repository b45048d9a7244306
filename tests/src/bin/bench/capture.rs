//! Advert timing from packet captures: dumpcap writes raw pcap files while the scenario runs,
//! and this module reads them afterwards, so no dissector competes with the daemons for CPU
//! during the window.
//!
//! A capture on the sender's own interface timestamps each advert when the kernel hands it to
//! the device (the send side); one on the receiver timestamps it after the bridge and the
//! receiver's softirq (the path). Taking both in one run separates the two.

use havip_e2e::Host;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running dumpcap in a host's namespace, capturing IPv4 VRRP on eth0.
pub struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    pub fn start(host: &Host, duration: Duration) -> Capture {
        let file = std::env::temp_dir().join(format!(
            "havip-bench-{}-{}.pcap",
            host.ns,
            std::process::id()
        ));
        let _ = std::fs::remove_file(&file);
        // dumpcap comes with tshark, which the codec tests install. -P: classic pcap, which
        // `read_adverts` parses; -s 64: headers only; -B 16: a 16 MiB ring, so 25,500
        // adverts/s are not dropped while the daemons keep both cores busy.
        let child = Command::new("ip")
            .args([
                "netns", "exec", &host.ns, "dumpcap", "-i", "eth0", "-q", "-P",
            ])
            .args(["-s", "64", "-B", "16", "-f", "ip proto 112", "-w"])
            .arg(&file)
            .arg("-a")
            .arg(format!("duration:{}", duration.as_secs()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dumpcap (from the tshark package)");
        Capture { child, file }
    }

    /// Waits for the capture to end; per VRID, |gap between adverts − interval| in ms.
    pub fn finish(mut self, interval: Duration) -> Vec<f64> {
        let _ = self.child.wait();
        let bytes = std::fs::read(&self.file).unwrap_or_default();
        let _ = std::fs::remove_file(&self.file);
        deviations(&read_adverts(&bytes), interval)
    }
}

/// (time in seconds, VRID) of every IPv4 VRRP advert in a classic pcap file of Ethernet
/// frames; anything else, or a truncated tail, is skipped.
fn read_adverts(pcap: &[u8]) -> Vec<(f64, u8)> {
    let Some(header) = pcap.get(..24) else {
        return Vec::new();
    };
    let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let fraction = match magic {
        0xa1b2_c3d4 => 1e-6,
        0xa1b2_3c4d => 1e-9,
        _ => return Vec::new(),
    };
    let word = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let mut adverts = Vec::new();
    let mut at = 24;
    while let Some(record) = pcap.get(at..at + 16) {
        let time = f64::from(word(record, 0)) + f64::from(word(record, 4)) * fraction;
        let captured = word(record, 8) as usize;
        let Some(frame) = pcap.get(at + 16..at + 16 + captured) else {
            break;
        };
        at += 16 + captured;
        if frame.get(12..14) != Some(&[0x08, 0x00]) {
            continue;
        }
        let Some(&version_ihl) = frame.get(14) else {
            continue;
        };
        let vrrp = 14 + usize::from(version_ihl & 0x0f) * 4;
        if frame.get(14 + 9) == Some(&112)
            && let Some(&vrid) = frame.get(vrrp + 1)
        {
            adverts.push((time, vrid));
        }
    }
    adverts
}

/// Per VRID, |gap between consecutive adverts − interval| in ms.
fn deviations(adverts: &[(f64, u8)], interval: Duration) -> Vec<f64> {
    let mut last: HashMap<u8, f64> = HashMap::new();
    adverts
        .iter()
        .filter_map(|&(t, vrid)| {
            let previous = last.insert(vrid, t)?;
            Some(((t - previous) - interval.as_secs_f64()).abs() * 1000.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap(records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&[2, 0, 4, 0]);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&65535u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        for (sec, usec, frame) in records {
            out.extend_from_slice(&sec.to_le_bytes());
            out.extend_from_slice(&usec.to_le_bytes());
            let len = u32::try_from(frame.len()).unwrap();
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(frame);
        }
        out
    }

    fn advert(vrid: u8) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[9] = 112;
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x31, vrid, 150, 1]);
        f
    }

    #[test]
    fn adverts_are_read_with_their_time_and_vrid_and_other_frames_skipped() {
        let arp = {
            let mut f = vec![0u8; 12];
            f.extend_from_slice(&[0x08, 0x06]);
            f.extend_from_slice(&[0; 28]);
            f
        };
        let file = pcap(&[
            (10, 500_000, &advert(7)),
            (10, 600_000, &arp),
            (10, 510_250, &advert(9)),
        ]);
        let got = read_adverts(&file);
        assert_eq!(got.len(), 2);
        assert!((got[0].0 - 10.5).abs() < 1e-9 && got[0].1 == 7);
        assert!((got[1].0 - 10.51025).abs() < 1e-9 && got[1].1 == 9);
    }

    #[test]
    fn a_truncated_file_yields_the_whole_records_before_the_cut() {
        let mut file = pcap(&[(1, 0, &advert(1)), (1, 10_000, &advert(1))]);
        file.truncate(file.len() - 5);
        assert_eq!(read_adverts(&file).len(), 1);
        assert!(read_adverts(&file[..10]).is_empty());
    }

    #[test]
    fn deviations_are_taken_per_vrid() {
        let adverts = [(0.0, 1), (0.005, 2), (0.0105, 1), (0.0150, 2), (0.0198, 1)];
        let d = deviations(&adverts, Duration::from_millis(10));
        let want = [0.5, 0.0, 0.7];
        assert_eq!(d.len(), want.len());
        for (got, want) in d.iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }
}
