//! Our client library against our relay.

mod auth;
mod basic;
mod crash;
mod delivery;
mod groups;
mod held;
mod hostile;
mod keys;
mod processes;
mod store;
