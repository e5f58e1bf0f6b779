//! The wire protocol against the reference's vectors.

mod olm;
mod vectors;
