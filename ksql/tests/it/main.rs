mod bad_records;
mod cases;
mod common;
mod exactly_once;
mod functions;
mod rest;
mod restart;
