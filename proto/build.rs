//! Compiles `havip/v1/*.proto` with protox (pure Rust), so a fresh machine needs no system
//! protoc. Emits the tonic/prost code, the proto3 JSON mapping (pbjson) and the encoded
//! descriptor set that server reflection serves.

use prost::Message;
use std::error::Error;
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "havip/v1/types.proto",
    "havip/v1/instances.proto",
    "havip/v1/events.proto",
    "havip/v1/history.proto",
    "havip/v1/maintenance.proto",
    "havip/v1/syncgroups.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let encoded = descriptors.encode_to_vec();
    std::fs::write(out_dir.join("havip_descriptor.bin"), &encoded)?;

    tonic_prost_build::configure()
        .compile_well_known_types(true)
        // Ordered maps make JSON, YAML and table output (labels, counters) deterministic.
        .btree_map(".")
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(descriptors)?;

    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .btree_map(["."])
        .build(&[".havip.v1"])?;
    Ok(())
}
