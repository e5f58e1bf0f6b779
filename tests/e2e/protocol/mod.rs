//! The wire protocol against the reference's vectors.

mod fuzz_corpus;
mod olm;
mod vectors;
