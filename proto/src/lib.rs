//! The havip gRPC API (`havip.v1`): messages, tonic clients and servers, the proto3 JSON
//! mapping of every message (serde, via pbjson), and the descriptor set for reflection.

#![allow(missing_debug_implementations)]

/// Generated code; its lints are the generator's business.
#[allow(clippy::all, clippy::unwrap_used, clippy::expect_used)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/havip.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/havip.v1.serde.rs"));
}

/// The encoded `FileDescriptorSet` of every havip proto and its imports, for server
/// reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/havip_descriptor.bin"));
