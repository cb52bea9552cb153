//! runnel-testkit: the helpers every crate's integration tests share, so each harness
//! keeps only what is its own (a Connect worker, a KSQL engine, a child process).
//!
//! - `broker.rs`: an in-process broker with test defaults, awaited or on its own
//!   runtime for tests that block ([`TestBroker`]); a free loopback port.
//! - `topics.rs`: create topics, produce with Kafka's partitioner, read a topic back
//!   until a condition holds or until it has been idle (the way to check that nothing
//!   more arrives, instead of a fixed sleep).
//! - `wait.rs`: waiting for a condition, always with a deadline and a description
//!   of what was awaited in the failure.
//!
//! Test support, not a library: failures panic with a message naming what failed.

pub mod broker;
pub mod topics;
pub mod wait;

pub use broker::{broker_config, free_port, init_tracing, start_broker, TestBroker};
pub use topics::{
    all_records, create_topic, create_topic_async, drain_until_idle, latest_per_key, produce,
};
pub use wait::{eventually, eventually_async, settle, settle_async, wait_for, wait_until};
