//! End-to-end tests and benchmarks: real daemons in network namespaces.
