mod cases;
mod common;
