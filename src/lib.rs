//! `runnel`: an event streaming platform that speaks the Apache Kafka protocol.
//!
//! This facade re-exports the workspace's crates; the `runnel` binary (src/main.rs)
//! is the command line over them: [`broker`] (`runnel-broker`), the durable
//! Kafka-compatible broker; [`connect`] (`runnel-connect`), the Connect runtime;
//! [`streams`] (`runnel-streams`), the Streams library; [`ksql`] (`runnel-ksql`), the
//! SQL layer with its server and shell.

pub use runnel_broker as broker;
pub use runnel_connect as connect;
pub use runnel_ksql as ksql;
pub use runnel_streams as streams;
