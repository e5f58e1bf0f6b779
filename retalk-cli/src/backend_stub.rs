//! Temporary stand-in for `backend.rs` while the client library is being
//! written: same surface, every operation refused. Removed when it lands.

use crate::error::CliError;
use crate::follow::Mailbox;
use crate::output::Batch;
use std::path::Path;
use std::time::Duration;

pub struct Identity;

fn missing() -> CliError {
    CliError::failure("this build of retalk has no client library yet")
}

pub fn exists(dir: &Path) -> bool {
    dir.join("store.db").exists()
}

pub async fn create(_: &Path, _: &str, _: &str, _: Option<&str>) -> Result<Identity, CliError> {
    Err(missing())
}

pub async fn open(_: &Path, _: &str) -> Result<Identity, CliError> {
    Err(missing())
}

impl Identity {
    pub fn set_relay_url(&mut self, _: &str) {}
    pub fn relay_url(&self) -> Option<String> {
        None
    }
    pub fn user_id(&self) -> String {
        String::new()
    }
    pub fn identity_key(&self) -> String {
        String::new()
    }
    pub fn signing_key(&self) -> String {
        String::new()
    }
    pub fn name(&self) -> String {
        String::new()
    }
    pub async fn ensure_published(&self) -> Result<(), CliError> {
        Err(missing())
    }
    pub fn resolve_peer(&self, _: &str) -> Result<String, CliError> {
        Err(missing())
    }
    pub async fn send(&self, _: &str, _: &str) -> Result<String, CliError> {
        Err(missing())
    }
    pub fn add_peer(&self, _: &str, _: &str, _: Option<&str>) -> Result<(), CliError> {
        Err(missing())
    }
    pub async fn receive(&self, _: Option<Duration>) -> Result<Batch, CliError> {
        Err(missing())
    }
}

impl Mailbox for Identity {
    async fn heal(&mut self) -> Result<(), CliError> {
        Err(missing())
    }
    async fn supports_wait(&mut self) -> Result<bool, CliError> {
        Err(missing())
    }
    async fn fetch(&mut self, _: Option<Duration>) -> Result<Batch, CliError> {
        Err(missing())
    }
    async fn maintain(&mut self) -> Result<(), CliError> {
        Err(missing())
    }
}
