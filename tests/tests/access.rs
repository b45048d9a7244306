//! Who may talk to havipd, end to end: TLS and mutual TLS over TCP (accepted and refused
//! cases, from gRPC clients and havipctl), plain TCP only on loopback with --insecure, the
//! unix socket's mode and group, the actor recorded for a change over each, folders that
//! are not safe, the limit on watchers, and systemd's readiness messages.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use havip_e2e::daemon::test_bin;
use havip_e2e::netns::run_in;
use havip_e2e::pki::{Ca, Issued};
use havip_e2e::vrrp::spec;
use havip_e2e::{Daemon, Host, Lab, netns_available};
use havip_proto::v1::history_service_client::HistoryServiceClient;
use havip_proto::v1::instance_service_client::InstanceServiceClient;
use havip_proto::v1::{
    CreateInstanceRequest, ListConfigChangesRequest, ListInstancesRequest, WatchEventsRequest,
};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

const ADDR: &str = "10.0.0.1";

fn create_request(name: &str, vrid: u32) -> CreateInstanceRequest {
    CreateInstanceRequest {
        name: name.into(),
        spec: Some(spec(
            vrid,
            3,
            100,
            1000,
            &format!("10.0.0.{}/24", 100 + vrid),
        )),
        validate_only: false,
        comment: "access test".into(),
    }
}

/// How a test client connects.
#[derive(Clone, Default)]
struct Client {
    /// The CA to trust for the server; none: plain http://.
    ca: Option<std::path::PathBuf>,
    /// A client certificate.
    identity: Option<Issued>,
}

async fn channel(port: u16, client: &Client) -> Result<Channel, tonic::transport::Error> {
    let scheme = if client.ca.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{ADDR}:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(10));
    if let Some(ca) = &client.ca {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(std::fs::read(ca).unwrap()))
            .domain_name(ADDR);
        if let Some(id) = &client.identity {
            tls = tls.identity(Identity::from_pem(
                std::fs::read(&id.cert).unwrap(),
                std::fs::read(&id.key).unwrap(),
            ));
        }
        endpoint = endpoint.tls_config(tls).unwrap();
    }
    endpoint.connect().await
}

/// Whether a ListInstances call over this client works, from inside the host's namespace.
/// A refused handshake may surface at connect or at the first call.
fn lists(host: &Host, port: u16, client: &Client) -> Result<(), String> {
    let client = client.clone();
    run_in(&host.ns, || async move {
        let channel = channel(port, &client).await.map_err(|e| format!("{e:?}"))?;
        InstanceServiceClient::new(channel)
            .list_instances(ListInstancesRequest::default())
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    })
}

/// The actor of the newest config change, read over this client.
fn create_and_read_actor(host: &Host, port: u16, client: &Client, name: &str, vrid: u32) -> String {
    let client = client.clone();
    let name = name.to_owned();
    run_in(&host.ns, || async move {
        let channel = channel(port, &client).await.unwrap();
        InstanceServiceClient::new(channel.clone())
            .create_instance(create_request(&name, vrid))
            .await
            .unwrap();
        newest_actor(channel, &name).await
    })
}

async fn newest_actor(channel: Channel, name: &str) -> String {
    let changes = HistoryServiceClient::new(channel)
        .list_config_changes(ListConfigChangesRequest {
            filter: Some(havip_proto::v1::HistoryFilter {
                instance: name.into(),
                ..Default::default()
            }),
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .changes;
    changes.first().unwrap().actor.clone()
}

/// havipctl run in the host's namespace.
fn havipctl(host: &Host, args: &[&str]) -> (bool, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", &host.ns])
        .arg(test_bin("e2e-havipctl"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn tls_and_mutual_tls_accept_the_right_clients_only() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("tls");
    let host = lab.host("a", Some(&format!("{ADDR}/24")), None);
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new(pki.path(), "havip-ca");
    let other_ca = Ca::new(pki.path(), "other-ca");
    let server = ca.server("server", &[ADDR]);
    let alice = ca.client("alice", "ops-alice", "example");
    let mallory = other_ca.client("mallory", "ops-alice", "example");

    // Server-only TLS on one port, mutual TLS on another.
    let tls_port = 50443;
    let mtls_port = 50444;
    let _tls = Daemon::start_with(
        &host,
        "tls",
        &[
            "--listen",
            &format!("tcp://{ADDR}:{tls_port}"),
            "--tls-cert",
            s(&server.cert),
            "--tls-key",
            s(&server.key),
        ],
    );
    let _mtls = Daemon::start_with(
        &host,
        "mtls",
        &[
            "--listen",
            &format!("tcp://{ADDR}:{mtls_port}"),
            "--tls-cert",
            s(&server.cert),
            "--tls-key",
            s(&server.key),
            "--tls-client-ca",
            s(&ca.cert),
        ],
    );

    let trusting = Client {
        ca: Some(ca.cert.clone()),
        identity: None,
    };
    let with = |id: &Issued| Client {
        ca: Some(ca.cert.clone()),
        identity: Some(id.clone()),
    };

    // TLS: a client that trusts the CA gets in; one that does not, or speaks plain HTTP/2,
    // does not.
    lists(&host, tls_port, &trusting).unwrap();
    let wrong_trust = Client {
        ca: Some(other_ca.cert.clone()),
        identity: None,
    };
    assert!(lists(&host, tls_port, &wrong_trust).is_err());
    assert!(lists(&host, tls_port, &Client::default()).is_err());
    // Without a client CA, the actor is the TCP peer.
    let actor = create_and_read_actor(&host, tls_port, &trusting, "one", 1);
    assert!(actor.starts_with(&format!("tcp:{ADDR}:")), "{actor}");

    // Mutual TLS: only a certificate from the client CA gets in, and it names the actor.
    let err = lists(&host, mtls_port, &trusting).unwrap_err();
    assert!(!err.is_empty());
    assert!(lists(&host, mtls_port, &with(&mallory)).is_err());
    lists(&host, mtls_port, &with(&alice)).unwrap();
    let actor = create_and_read_actor(&host, mtls_port, &with(&alice), "two", 2);
    assert_eq!(actor, "cert:CN=ops-alice,O=example");

    // havipctl speaks TLS too, and says what to check when the handshake fails.
    let server_url = format!("https://{ADDR}:{mtls_port}");
    let (ok, out) = havipctl(
        &host,
        &[
            "--server",
            &server_url,
            "--tls-ca",
            s(&ca.cert),
            "--tls-cert",
            s(&alice.cert),
            "--tls-key",
            s(&alice.key),
            "get-instance",
            "two",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("two"), "{out}");
    let (ok, out) = havipctl(
        &host,
        &[
            "--server",
            &format!("https://{ADDR}:{tls_port}"),
            "--tls-ca",
            s(&other_ca.cert),
            "list-instances",
        ],
    );
    assert!(!ok);
    assert!(out.contains("Check --tls-ca"), "{out}");
    let (ok, out) = havipctl(
        &host,
        &["--server", &server_url, "--tls-ca", s(&ca.cert), "health"],
    );
    assert!(!ok, "no client certificate, no entry: {out}");
}

#[test]
fn plain_tcp_only_on_loopback_with_insecure() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("plain");
    let host = lab.host("a", Some(&format!("{ADDR}/24")), None);
    let refused = |args: &[&str], why: &str| {
        let out = Daemon::run_to_exit(&host, "refused", args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    };
    refused(
        &["--listen", &format!("tcp://{ADDR}:50051")],
        "refusing to serve the API over plain TCP",
    );
    refused(
        &["--listen", &format!("tcp://{ADDR}:50051"), "--insecure"],
        "only on a loopback address",
    );
    refused(
        &["--listen", "tcp://0.0.0.0:50051", "--insecure"],
        "only on a loopback address",
    );

    let _d = Daemon::start_with(
        &host,
        "loop",
        &["--listen", "tcp://127.0.0.1:50051", "--insecure"],
    );
    let (ok, out) = havipctl(&host, &["--server", "http://127.0.0.1:50051", "health"]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "SERVING");
}

#[tokio::test]
async fn the_unix_socket_has_mode_0660_the_group_asked_for_and_records_the_uid() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("sock");
    let host = lab.host("a", Some(&format!("{ADDR}/24")), None);
    let group = "nogroup";
    let gid = nix::unistd::Group::from_name(group).unwrap().unwrap().gid;
    let mut d = Daemon::start_with(&host, "sock", &["--socket-group", group]);
    assert!(
        d.notifications().iter().all(|n| !n.contains("STOPPING=1")),
        "nothing about stopping yet"
    );

    let meta = std::fs::metadata(d.socket()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660);
    assert_eq!(meta.gid(), gid.as_raw());

    let mut instances = d.instances().await;
    instances
        .create_instance(create_request("web", 7))
        .await
        .unwrap();
    let actor = newest_actor(d.channel().await, "web").await;
    assert_eq!(actor, format!("uid:{}", nix::unistd::geteuid()));

    d.stop();
    let said = d.notifications().join("\n");
    assert!(said.contains("STOPPING=1"), "{said:?}");
}

#[test]
fn folders_every_user_may_write_are_refused() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("folders");
    let host = lab.host("a", Some(&format!("{ADDR}/24")), None);
    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let db = open.path().join("havip.db");
    let out = Daemon::run_to_exit(&host, "folders", &["--db", s(&db)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--db: the folder") && stderr.contains("is writable by every user"),
        "{stderr}"
    );
    assert!(!db.exists(), "nothing was written there");

    let sock = open.path().join("havipd.sock");
    let out = Daemon::run_to_exit(
        &host,
        "folders",
        &["--listen", &format!("unix://{}", sock.display())],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--listen: the folder"), "{stderr}");
    assert!(!sock.exists());
}

#[tokio::test]
async fn watchers_beyond_the_limit_are_refused_until_one_leaves() {
    if !netns_available() {
        return;
    }
    let mut lab = Lab::new("watchers");
    let host = lab.host("a", Some(&format!("{ADDR}/24")), None);
    let d = Daemon::start_with(&host, "w", &["--max-watchers", "2"]);
    let watch = || WatchEventsRequest {
        after_seq: Some(0),
        ..Default::default()
    };
    let mut events = d.events().await;
    let first = events.watch_events(watch()).await.unwrap();
    let _second = events.watch_events(watch()).await.unwrap();
    let err = events.watch_events(watch()).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("--max-watchers"),
        "{}",
        err.message()
    );

    drop(first);
    // The stream's end reaches the daemon a moment later.
    let mut admitted = false;
    for _ in 0..100 {
        if events.watch_events(watch()).await.is_ok() {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(admitted, "a watcher left, so a new one is admitted");
}
