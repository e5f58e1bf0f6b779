//! The scenarios, one module each; `all` runs the set side by side.

pub mod abuse;
pub mod all;
pub mod cli;
pub mod latency;
pub mod library;
pub mod read;
pub mod replicas;
pub mod send;
pub mod verify;
pub mod waiters;
