//! The havipctl command-line client.
