//! The driver's integration tests, built as one binary: every test binary of this crate links
//! MLIR (about 400 MB in a debug build), and a binary per file filled CI's disk.
//! `cargo test -p mkc-driver --test integration MODULE::` runs one file's tests.

mod artifact_validation;
mod common;
mod fuzz_artifact;
mod gguf;
mod kernel_text;
mod non_finite;
mod quantized;
mod sim_declared_reads;
mod sim_layer_stack;
