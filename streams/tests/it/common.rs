//! The shared test kit (an in-process broker on its own runtime, topics, waits) is
//! all the Streams tests need from outside.

pub use runnel_testkit::{
    all_records, create_topic, latest_per_key, produce, wait_for, TestBroker,
};
