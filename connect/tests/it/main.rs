//! Connect against an in-process broker: file round trips, the REST API over HTTP,
//! error handling and transforms on real records.

mod common;
mod distributed;
mod errors;
mod exactly_once;
mod file_roundtrip;
mod pg;
mod pgoutput;
mod postgres_cdc;
mod postgres_sink;
mod postgres_source;
mod rest;
mod transforms;
