//! Tests of the network layer against the real kernel and an independent decoder:
//! frames checked by tshark, and sockets, netlink, VMACs, the link watcher and the GARP
//! service exercised in network namespaces made for each test (see [`super::testns`]).

mod garp;
mod keepalived;
mod link;
mod netlink;
mod socket;
mod tshark;
