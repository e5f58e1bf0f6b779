//! Our client library against our relay.

mod auth;
mod basic;
mod crash;
mod delivery;
mod hostile;
mod keys;
mod processes;
mod store;
