//! The SQLite backend: one relay process per database file, every request
//! run by the group-commit writer ([`crate::writer`]) on the schema of
//! [`crate::store`]. Both modules keep their place (and their speed); this
//! is the [`Backend`] face of them.

pub mod page_cache;
pub mod wal_buffer;

use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Backend;
use crate::writer::{Job, WriterHandle};

/// The group-commit writer and its thread.
pub struct Sqlite {
    writer: WriterHandle,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Sqlite {
    /// Wraps a writer started by [`crate::writer::spawn`].
    pub fn new(writer: WriterHandle, thread: JoinHandle<()>) -> Sqlite {
        Sqlite {
            writer,
            thread: Mutex::new(Some(thread)),
        }
    }
}

impl Backend for Sqlite {
    fn submit(&self, job: Job) {
        self.writer.submit(job);
    }

    fn stop(&self) {
        self.writer.stop();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// Every commit that stores mail wakes that mailbox's waiters: no
    /// re-checks needed.
    fn recheck(&self) -> Option<Duration> {
        None
    }
}
