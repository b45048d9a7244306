//! The rules an instance spec must follow, in two steps: [`validate_spec`] checks the
//! request on its own (INVALID_ARGUMENT), [`check_against_interface`] checks it against the
//! interface it names (unicast source and owned addresses are the interface's).

use super::trackers::{OverrideSpec, TrackerSpec};
use super::{SpecError, Violation};
use havip_proto::v1::{AuthType, ChecksumMode, InstanceSpec};
use havip_vrrp::packet::{Auth, ChecksumForm};
use havip_vrrp::{AdvertInterval, Family, GarpConfig, InstanceConfig, Version, Vrid};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// The longest GARP delay or refresh period accepted.
const MAX_GARP_PERIOD: Duration = Duration::from_secs(3600);
const MAX_NAME_LEN: usize = 63;
/// IFNAMSIZ is 16 including the terminating NUL.
const MAX_INTERFACE_LEN: usize = 15;
const MAX_LABEL_KEY_LEN: usize = 63;
const MAX_LABEL_VALUE_LEN: usize = 255;
const MAX_LABELS: usize = 64;
const MAX_DESCRIPTION_LEN: usize = 1024;
const MAX_PEERS: usize = 64;
/// A change's comment goes into the audit trail, which is kept for good: room for a
/// sentence or a ticket reference, not for a file.
pub const MAX_COMMENT_LEN: usize = 1024;

/// A virtual address with its prefix length, as installed on the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// A spec that passed every rule that needs no host, in the forms the runtime uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Validated {
    /// The normalized spec, password included.
    pub spec: InstanceSpec,
    pub interface: String,
    pub family: Family,
    pub version: Version,
    pub vrid: Vrid,
    pub vips: Vec<Vip>,
    /// The configured source; `None` means the interface's primary address.
    pub unicast_source: Option<IpAddr>,
    /// Unicast peers; empty means multicast.
    pub peers: Vec<IpAddr>,
    pub checksum: ChecksumForm,
    pub vmac: bool,
    pub disabled: bool,
    pub trackers: Vec<TrackerSpec>,
    pub priority_override: Option<OverrideSpec>,
    /// The engine's view, with the source address still to be decided.
    engine: InstanceConfig,
}

impl Validated {
    /// The engine configuration with `primary` as the address adverts come from.
    pub fn engine_config(&self, primary: IpAddr) -> InstanceConfig {
        InstanceConfig {
            primary_address: primary,
            ..self.engine.clone()
        }
    }

    /// What makes two instances the same virtual router on this host.
    pub fn identity(&self) -> (String, u8, Family) {
        (self.interface.clone(), self.vrid.get(), self.family)
    }

    pub fn is_address_owner(&self) -> bool {
        self.engine.is_address_owner()
    }
}

/// Whether `name` is 1–63 characters of letters, digits, '-', '_' and '.', starting with a
/// letter or digit: the syntax of instance, sync group, tracker and check names.
pub fn is_name(name: &str) -> bool {
    let ok_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    !name.is_empty() && name.len() <= MAX_NAME_LEN && ok_start && ok_chars
}

/// Whether `name` can be a Linux interface name.
pub(super) fn is_interface_name(name: &str) -> bool {
    !(name.is_empty()
        || name.len() > MAX_INTERFACE_LEN
        || name.contains(['/', ':'])
        || name.chars().any(char::is_whitespace))
}

/// Check an instance name: 1–63 characters of letters, digits, '-', '_' and '.', starting
/// with a letter or digit.
pub fn validate_name(name: &str) -> Result<(), Violation> {
    if !is_name(name) {
        return Err(Violation::new(
            "name",
            format!(
                "{name:?} is not a valid instance name: use 1-{MAX_NAME_LEN} letters, digits, '-', '_' or '.', starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// Check the comment of a change (`field` names it in the request: "comment", "reason").
pub fn validate_comment(field: &str, comment: &str) -> Result<(), Violation> {
    if comment.len() > MAX_COMMENT_LEN {
        return Err(Violation::new(
            field,
            format!(
                "is {} bytes; at most {MAX_COMMENT_LEN} (it is kept in the history for good): shorten it, or point to a document",
                comment.len()
            ),
        ));
    }
    Ok(())
}

/// Check a normalized spec against every rule that needs no host.
pub fn validate_spec(spec: InstanceSpec) -> Result<Validated, SpecError> {
    let mut v = Checker::default();
    let interface = v.interface(&spec.interface);
    let vrid = v.vrid(spec.vrid);
    let version = v.version(spec.version);
    let priority = v.priority(spec.priority);
    let vips = v.vips(&spec.virtual_addresses);
    let family = vips.first().map(|vip| Family::of(&vip.addr));
    if let (Some(Version::V2), Some(Family::Ipv6)) = (version, family) {
        v.fail(
            "spec.version",
            "IPv6 virtual addresses need VRRP version 3 (RFC 3768, version 2, is IPv4 only)",
        );
    }
    let interval = version.and_then(|ver| v.advert_interval(spec.advert_interval.as_ref(), ver));
    let preempt_delay = v.duration(
        "spec.preempt_delay",
        spec.preempt_delay.as_ref(),
        havip_vrrp::config::MAX_PREEMPT_DELAY,
    );
    let unicast_source = v.unicast_source(&spec.unicast_source, family, &vips, priority);
    let peers = v.peers(&spec.unicast_peers, family, unicast_source);
    let auth = v.auth(&spec, version);
    let garp = v.garp(&spec);
    let checksum = v.checksum(spec.v3_ipv4_checksum);
    v.labels(&spec);
    let trackers = v.trackers(&spec.trackers);
    let priority_override = v.priority_override(spec.priority_override.as_ref(), priority);
    if spec.description.len() > MAX_DESCRIPTION_LEN {
        v.fail(
            "spec.description",
            format!(
                "is {} bytes; at most {MAX_DESCRIPTION_LEN}",
                spec.description.len()
            ),
        );
    }

    let (
        Some(interface),
        Some(vrid),
        Some(version),
        Some(priority),
        Some(family),
        Some(interval),
        Some(preempt_delay),
        Some(auth),
        Some(garp),
        Some(checksum),
    ) = (
        interface,
        vrid,
        version,
        priority,
        family,
        interval,
        preempt_delay,
        auth,
        garp,
        checksum,
    )
    else {
        return Err(SpecError::Invalid(v.violations));
    };
    if !v.violations.is_empty() {
        return Err(SpecError::Invalid(v.violations));
    }
    let placeholder = unicast_source.unwrap_or(match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    let engine = InstanceConfig {
        vrid,
        version,
        family,
        priority,
        advert_interval: interval,
        preempt: spec.preempt.unwrap_or(true),
        preempt_delay,
        accept_mode: spec.accept_mode.unwrap_or(true),
        primary_address: placeholder,
        virtual_addresses: vips.iter().map(|vip| vip.addr).collect(),
        auth,
        garp,
    };
    // The engine's rules are the last word; anything they refuse that the checks above let
    // through is reported under the engine's field name.
    if let Err(e) = engine.validate() {
        return Err(SpecError::Invalid(vec![Violation::new(
            format!("spec.{}", e.field()),
            e.to_string(),
        )]));
    }
    Ok(Validated {
        interface,
        family,
        version,
        vrid,
        vips,
        unicast_source,
        peers,
        checksum,
        vmac: spec.vmac,
        disabled: spec.disabled,
        trackers,
        priority_override,
        engine,
        spec,
    })
}

/// What the host says about the interface an instance names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InterfaceFacts {
    /// The addresses on the interface now.
    pub addresses: Vec<IpAddr>,
    /// The address adverts would come from when no source is configured.
    pub primary: Option<IpAddr>,
}

/// Check a validated spec against its interface and decide the source address.
pub fn check_against_interface(
    validated: &Validated,
    facts: &InterfaceFacts,
) -> Result<IpAddr, SpecError> {
    let mut violations = Vec::new();
    if let Some(source) = validated.unicast_source
        && !facts.addresses.contains(&source)
    {
        violations.push(Violation::new(
            "spec.unicast_source",
            format!(
                "{source} is not an address of interface {}; adverts must come from one of its own addresses ({})",
                validated.interface,
                list(&facts.addresses)
            ),
        ));
    }
    if validated.is_address_owner() {
        let missing: Vec<IpAddr> = validated
            .vips
            .iter()
            .map(|vip| vip.addr)
            .filter(|a| !facts.addresses.contains(a))
            .collect();
        if !missing.is_empty() {
            violations.push(Violation::new(
                "spec.priority",
                format!(
                    "priority 255 is for the router that owns the virtual addresses, but {} {} not on interface {}; use 1-254",
                    list(&missing),
                    if missing.len() == 1 { "is" } else { "are" },
                    validated.interface
                ),
            ));
        }
    }
    if !violations.is_empty() {
        return Err(SpecError::Invalid(violations));
    }
    match validated.unicast_source.or(facts.primary) {
        Some(source) => Ok(source),
        None => Err(SpecError::Precondition(format!(
            "interface {} has no {} address to send adverts from{}; add one, or set unicast_source",
            validated.interface,
            validated.family,
            if validated.family == Family::Ipv6 {
                " (VRRPv3 over IPv6 sends from the link-local address)"
            } else {
                ""
            }
        ))),
    }
}

fn list(addrs: &[IpAddr]) -> String {
    if addrs.is_empty() {
        return "none".into();
    }
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parse "ADDR/LEN" or a bare address (a host route: /32 or /128).
pub(crate) fn parse_vip(s: &str) -> Result<Vip, String> {
    let s = s.trim();
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| {
        format!("{s:?} is not an IP address with an optional /prefix, e.g. 10.0.0.100/24")
    })?;
    let max = match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let prefix_len = match len {
        None => max,
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| format!("{s:?}: the prefix length must be 0-{max}"))?,
    };
    Ok(Vip { addr, prefix_len })
}

fn unusable(addr: &IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V4(a) if a.is_loopback() => Some("a loopback address"),
        IpAddr::V4(a) if a.is_multicast() => Some("a multicast address"),
        IpAddr::V4(a) if a.is_broadcast() => Some("the broadcast address"),
        IpAddr::V6(a) if a.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(a) if a.is_loopback() => Some("a loopback address"),
        IpAddr::V6(a) if a.is_multicast() => Some("a multicast address"),
        _ => None,
    }
}

/// Collects every violation, so one answer lists everything to fix.
#[derive(Default)]
pub(super) struct Checker {
    pub(super) violations: Vec<Violation>,
}

impl Checker {
    pub(super) fn fail(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.push(Violation::new(field, description));
    }

    fn interface(&mut self, name: &str) -> Option<String> {
        if !is_interface_name(name) {
            self.fail(
                "spec.interface",
                format!("{name:?} is not an interface name: 1-{MAX_INTERFACE_LEN} characters, no '/', ':' or spaces (e.g. eth0)"),
            );
            return None;
        }
        Some(name.to_owned())
    }

    fn vrid(&mut self, vrid: u32) -> Option<Vrid> {
        let v = u8::try_from(vrid).ok().and_then(Vrid::new);
        if v.is_none() {
            self.fail(
                "spec.vrid",
                format!("{vrid} is not a virtual router id: use 1-255"),
            );
        }
        v
    }

    fn version(&mut self, version: Option<u32>) -> Option<Version> {
        let n = version.unwrap_or(3);
        let v = u8::try_from(n).ok().and_then(Version::from_number);
        if v.is_none() {
            self.fail(
                "spec.version",
                format!("VRRP version {n} does not exist here: use 2 or 3"),
            );
        }
        v
    }

    fn priority(&mut self, priority: Option<u32>) -> Option<u8> {
        let n = priority.unwrap_or(100);
        match u8::try_from(n) {
            Ok(p) if p >= 1 => Some(p),
            _ => {
                self.fail(
                    "spec.priority",
                    format!("{n} is not a priority: use 1-254, or 255 on the router that owns the virtual addresses"),
                );
                None
            }
        }
    }

    fn vips(&mut self, given: &[String]) -> Vec<Vip> {
        if given.is_empty() {
            self.fail(
                "spec.virtual_addresses",
                "at least one virtual address is required, e.g. 10.0.0.100/24",
            );
            return Vec::new();
        }
        if given.len() > 255 {
            self.fail(
                "spec.virtual_addresses",
                format!(
                    "{} addresses given; an advert carries at most 255",
                    given.len()
                ),
            );
        }
        let mut vips: Vec<Vip> = Vec::with_capacity(given.len());
        let mut family = None;
        for (i, s) in given.iter().enumerate() {
            let field = format!("spec.virtual_addresses[{i}]");
            let vip = match parse_vip(s) {
                Ok(vip) => vip,
                Err(e) => {
                    self.fail(field, e);
                    continue;
                }
            };
            if let Some(why) = unusable(&vip.addr) {
                self.fail(
                    field,
                    format!("{} is {why} and cannot be a virtual address", vip.addr),
                );
                continue;
            }
            let f = Family::of(&vip.addr);
            match family {
                None => family = Some(f),
                Some(first) if first != f => {
                    self.fail(
                        field,
                        format!("{} is {f} but the first address is {first}: one address family per instance (make a second instance for the other)", vip.addr),
                    );
                    continue;
                }
                _ => {}
            }
            if vips.iter().any(|v| v.addr == vip.addr) {
                self.fail(field, format!("{} is listed twice", vip.addr));
                continue;
            }
            vips.push(vip);
        }
        vips
    }

    pub(super) fn duration(
        &mut self,
        field: &str,
        d: Option<&pbjson_types::Duration>,
        max: Duration,
    ) -> Option<Duration> {
        let d = d.copied().unwrap_or_default();
        let value = u64::try_from(d.seconds)
            .ok()
            .filter(|_| (0..1_000_000_000).contains(&d.nanos))
            .map(|s| Duration::new(s, d.nanos.unsigned_abs()));
        match value {
            Some(v) if v <= max => Some(v),
            Some(v) => {
                self.fail(
                    field,
                    format!(
                        "{} is longer than the {} allowed",
                        humantime::format_duration(v),
                        humantime::format_duration(max)
                    ),
                );
                None
            }
            None => {
                self.fail(field, "must be a non-negative duration");
                None
            }
        }
    }

    fn advert_interval(
        &mut self,
        d: Option<&pbjson_types::Duration>,
        version: Version,
    ) -> Option<AdvertInterval> {
        let d = self.duration("spec.advert_interval", d, Duration::from_secs(255))?;
        match AdvertInterval::from_duration(d, version) {
            Ok(i) => Some(i),
            Err(e) => {
                self.fail("spec.advert_interval", e.to_string());
                None
            }
        }
    }

    fn unicast_source(
        &mut self,
        s: &str,
        family: Option<Family>,
        vips: &[Vip],
        priority: Option<u8>,
    ) -> Option<IpAddr> {
        if s.is_empty() {
            return None;
        }
        let Ok(addr) = s.parse::<IpAddr>() else {
            self.fail("spec.unicast_source", format!("{s:?} is not an IP address"));
            return None;
        };
        if let Some(f) = family
            && Family::of(&addr) != f
        {
            self.fail(
                "spec.unicast_source",
                format!("{addr} is not {f}, the family of the virtual addresses"),
            );
        }
        if priority != Some(255) && vips.iter().any(|v| v.addr == addr) {
            self.fail(
                "spec.unicast_source",
                format!("{addr} is a virtual address; adverts must come from the interface's own address, or a network restart leads to split brain"),
            );
        }
        Some(addr)
    }

    fn peers(
        &mut self,
        given: &[String],
        family: Option<Family>,
        source: Option<IpAddr>,
    ) -> Vec<IpAddr> {
        if given.len() > MAX_PEERS {
            self.fail(
                "spec.unicast_peers",
                format!("{} peers given; at most {MAX_PEERS}", given.len()),
            );
        }
        let mut peers = Vec::with_capacity(given.len());
        let mut seen = BTreeSet::new();
        for (i, s) in given.iter().enumerate() {
            let field = format!("spec.unicast_peers[{i}]");
            let Ok(addr) = s.trim().parse::<IpAddr>() else {
                self.fail(field, format!("{s:?} is not an IP address"));
                continue;
            };
            if let Some(why) = unusable(&addr) {
                self.fail(field, format!("{addr} is {why} and cannot be a peer"));
            } else if family.is_some_and(|f| f != Family::of(&addr)) {
                self.fail(
                    field,
                    format!("{addr} is not of the virtual addresses' family"),
                );
            } else if !seen.insert(addr) {
                self.fail(field, format!("{addr} is listed twice"));
            } else if Some(addr) == source {
                self.fail(field, format!("{addr} is this router's own source address"));
            } else {
                peers.push(addr);
            }
        }
        peers
    }

    fn auth(&mut self, spec: &InstanceSpec, version: Option<Version>) -> Option<Auth> {
        let auth = spec.auth.clone().unwrap_or_default();
        match AuthType::try_from(auth.r#type) {
            Ok(AuthType::None | AuthType::Unspecified) => {
                if !auth.password.is_empty() {
                    self.fail(
                        "spec.auth.password",
                        "a password was given without auth type PASS",
                    );
                    return None;
                }
                Some(Auth::None)
            }
            Ok(AuthType::Pass) => {
                if version != Some(Version::V2) {
                    self.fail(
                        "spec.auth.type",
                        "PASS authentication exists only in VRRP version 2 (RFC 9568 removed it); use version 2 or no authentication",
                    );
                    return None;
                }
                match Auth::pass(&auth.password) {
                    Ok(a) => Some(a),
                    Err(e) => {
                        self.fail("spec.auth.password", e.to_string());
                        None
                    }
                }
            }
            Err(_) => {
                self.fail(
                    "spec.auth.type",
                    format!("unknown auth type {}", auth.r#type),
                );
                None
            }
        }
    }

    fn garp(&mut self, spec: &InstanceSpec) -> Option<GarpConfig> {
        let g = spec.garp.unwrap_or_default();
        let mut count = |field: &str, n: Option<u32>, default: u32| -> Option<u32> {
            let n = n.unwrap_or(default);
            if (1..=havip_vrrp::config::MAX_GARP_REPEAT).contains(&n) {
                Some(n)
            } else {
                self.fail(field, format!("{n} is out of range: use 1-255"));
                None
            }
        };
        let repeat = count("spec.garp.repeat", g.repeat, 5);
        let refresh_repeat = count("spec.garp.refresh_repeat", g.refresh_repeat, 1);
        let delay = self.duration("spec.garp.delay", g.delay.as_ref(), MAX_GARP_PERIOD);
        let refresh = self.duration("spec.garp.refresh", g.refresh.as_ref(), MAX_GARP_PERIOD);
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        Some(GarpConfig {
            repeat: repeat?,
            delay: nonzero(delay?),
            refresh: nonzero(refresh?),
            refresh_repeat: refresh_repeat?,
        })
    }

    fn checksum(&mut self, mode: i32) -> Option<ChecksumForm> {
        match ChecksumMode::try_from(mode) {
            Ok(ChecksumMode::Unspecified | ChecksumMode::PseudoHeader) => {
                Some(ChecksumForm::PseudoHeader)
            }
            Ok(ChecksumMode::MessageOnly) => Some(ChecksumForm::MessageOnly),
            Err(_) => {
                self.fail(
                    "spec.v3_ipv4_checksum",
                    format!("unknown checksum mode {mode}"),
                );
                None
            }
        }
    }

    fn labels(&mut self, spec: &InstanceSpec) {
        if spec.labels.len() > MAX_LABELS {
            self.fail(
                "spec.labels",
                format!("{} labels; at most {MAX_LABELS}", spec.labels.len()),
            );
        }
        for (k, value) in &spec.labels {
            let key_ok = !k.is_empty()
                && k.len() <= MAX_LABEL_KEY_LEN
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
            if !key_ok {
                self.fail(
                    format!("spec.labels[{k}]"),
                    format!("label key {k:?}: 1-{MAX_LABEL_KEY_LEN} letters, digits, '-', '_', '.' or '/'"),
                );
            }
            if value.len() > MAX_LABEL_VALUE_LEN {
                self.fail(
                    format!("spec.labels[{k}]"),
                    format!(
                        "label value is {} bytes; at most {MAX_LABEL_VALUE_LEN}",
                        value.len()
                    ),
                );
            }
        }
    }
}
