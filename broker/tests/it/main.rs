//! Integration tests: the broker in-process on 127.0.0.1:0, driven by rdkafka.

mod cleanup;
mod common;
mod garbage;
mod groups;
mod limits;
mod produce_fetch;
mod raw;
mod restart;
mod transactions;
