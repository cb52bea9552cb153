mod cases;
mod common;
mod functions;
mod rest;
mod restart;
