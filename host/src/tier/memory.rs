//! The memory tier: results of tasks that do not persist (`persist = false`
//! in `cairn.toml`), kept for the life of the host and never written down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{Found, NewResult, Stored, Tier, Want};
use crate::digest::Digest;
use crate::error::Result;
use crate::value::Value;

/// Results that do not persist, by key.
#[derive(Default)]
pub(crate) struct MemoryTier {
    results: Mutex<HashMap<Digest, (Option<Value>, Duration)>>,
}

impl Tier for MemoryTier {
    fn get(&self, key: &Digest, _: &Want<'_>) -> Result<Found> {
        Ok(match self.results.lock().expect("poisoned").get(key) {
            Some((value, run)) => Found::Hit(Box::new(Stored {
                value: value.clone(),
                run: *run,
                ..Stored::default()
            })),
            None => Found::Miss,
        })
    }

    fn put(&self, new: &NewResult<'_>) -> Result<()> {
        if !new.persist {
            self.results
                .lock()
                .expect("poisoned")
                .insert(*new.key, (new.value.cloned(), new.run));
        }
        Ok(())
    }
}
