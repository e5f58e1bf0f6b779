//! The relay's integration tests, one binary with a module per area: the
//! relay in this process (or, in `binary`, the real `retalk-server`
//! executable) on loopback, spoken to over HTTP as any client would.
//!
//! * `admission`: API keys, /admin, rate limits;
//! * `auth`: the reference's signed-request vectors over HTTP, replays,
//!   both dialects;
//! * `bad_input`: malformed, oversized, slow and hostile requests;
//! * `binary`: the executable: flags and environment, SIGTERM, kill -9;
//! * `concurrency`: racing claims, sends and reads;
//! * `conformance`: one storage suite run on SQLite and on PostgreSQL;
//! * `connections`: total and per-address connection bounds;
//! * `deploy`: the docker-compose file for replicas (checked, not run);
//! * `fixture`: a database written by the Python reference;
//! * `hardening`: defects found by hostile probing (issue 15);
//! * `limits`: caps on keys, bodies and answers;
//! * `mailbox_caps`: per-recipient, per-sender and byte caps, expiry;
//! * `metrics`: the metrics listener, /healthz, /readyz;
//! * `pg_admin`: API keys and /admin shared by replicas on PostgreSQL;
//! * `pg_groups`: group commit on PostgreSQL under concurrent requests;
//! * `pg_migrate`: `retalk-server migrate` from the reference's file to PostgreSQL;
//! * `replicas`: two relays on one PostgreSQL database;
//! * `tools`: each tool's answers;
//! * `wait`: waiting reads and their wake-ups.

mod admission;
mod auth;
mod bad_input;
mod binary;
mod concurrency;
mod conformance;
mod connections;
mod deploy;
mod fixture;
mod hardening;
mod limits;
mod mailbox_caps;
mod metrics;
mod pg_admin;
mod pg_groups;
mod pg_migrate;
mod replicas;
mod tools;
mod wait;
