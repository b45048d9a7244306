//! The havip daemon: runtime, manager, store and gRPC API around the engine.

pub mod net;
