mod bad_records;
mod cases;
mod common;
mod exactly_once;
mod functions;
mod headers;
mod rest;
mod restart;
