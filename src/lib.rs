//! `runnel`: an event streaming platform that speaks the Apache Kafka protocol.
//!
//! This facade re-exports the workspace's crates; the `runnel` binary (src/main.rs)
//! is the command line over them. Today: [`broker`] (`runnel-broker`), the durable
//! Kafka-compatible broker. Connect, Streams and KSQL join as they are built.

pub use runnel_broker as broker;
