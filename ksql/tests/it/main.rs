mod cases;
mod common;
mod rest;
mod restart;
