//! Single flight: identical calls running at once in this process execute
//! once. The first takes the key's gate and runs; the others wait on the
//! gate, then find the result the first one stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::digest::Digest;

/// The gates of keys executing now.
#[derive(Default)]
pub(crate) struct Flights {
    running: Mutex<HashMap<Digest, Arc<Mutex<()>>>>,
}

/// One caller's place in a key's flight.
pub(crate) struct Flight(Arc<Mutex<()>>);

impl Flight {
    /// Waits until no other caller of the key is executing it, and keeps
    /// the others waiting until the guard is dropped.
    pub(crate) fn hold(&self) -> MutexGuard<'_, ()> {
        // A caller that panicked while executing leaves the gate poisoned;
        // the next one simply looks up the key again.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Flights {
    /// Joins the flight of `key`.
    pub(crate) fn enter(&self, key: &Digest) -> Flight {
        Flight(
            self.running
                .lock()
                .expect("poisoned")
                .entry(*key)
                .or_default()
                .clone(),
        )
    }

    /// Leaves the flight of `key`, forgetting its gate once nobody else
    /// holds it.
    pub(crate) fn leave(&self, key: &Digest, flight: Flight) {
        let mut running = self.running.lock().expect("poisoned");
        // Clones are made and dropped only under this lock: once ours is
        // gone, one left means only the map's.
        drop(flight);
        if running.get(key).is_some_and(|g| Arc::strong_count(g) == 1) {
            running.remove(key);
        }
    }

    /// Keys with a flight now (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.running.lock().expect("poisoned").len()
    }
}
