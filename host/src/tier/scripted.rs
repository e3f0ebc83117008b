//! A tier for unit tests of the call path: it answers lookups from a script
//! (hit, miss, expired, error, or held until the test lets it go), and
//! otherwise from what was put into it, and counts what it was asked.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

use super::{Claimed, Found, NewResult, Stored, Tier, Want};
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::value::Value;

/// One scripted answer to a lookup.
pub(crate) enum Answer {
    Hit(Option<Value>),
    /// A hit whose value names a blob this tier lacks.
    HitWithoutBlob(Option<Value>, (Digest, u64)),
    Expired(u64),
    Miss,
    Fail(&'static str),
    /// Blocks until the test sends on the channel (or drops it), then
    /// answers.
    Held(Mutex<Receiver<()>>, Box<Answer>),
}

/// A tier that follows a script.
#[derive(Default)]
pub(crate) struct ScriptedTier {
    script: Mutex<VecDeque<Answer>>,
    /// Values other machines publish while the next claims wait.
    published: Mutex<VecDeque<Option<Value>>>,
    kept: Mutex<HashMap<Digest, Option<Value>>>,
    /// Lookups asked, puts received, claims asked.
    pub(crate) gets: Mutex<Vec<Digest>>,
    pub(crate) puts: Mutex<Vec<(Digest, Option<Value>, bool)>>,
    pub(crate) claims_asked: Mutex<usize>,
}

impl ScriptedTier {
    pub(crate) fn new() -> Arc<ScriptedTier> {
        Arc::default()
    }

    /// Answers the next lookup with `answer` (answers queue up in order).
    pub(crate) fn then(&self, answer: Answer) -> &Self {
        self.script.lock().unwrap().push_back(answer);
        self
    }

    /// Answers the next claim (claims queue up in order) with "published
    /// meanwhile", putting `value` in the tier as another machine's
    /// publication would; unscripted claims are this process's.
    pub(crate) fn then_publish(&self, value: Option<Value>) -> &Self {
        self.published.lock().unwrap().push_back(value);
        self
    }

    fn answer(answer: Answer) -> Result<Found> {
        Ok(match answer {
            Answer::Hit(value) => hit(value, Vec::new()),
            Answer::HitWithoutBlob(value, blob) => hit(value, vec![blob]),
            Answer::Expired(at) => Found::Expired(at),
            Answer::Miss => Found::Miss,
            Answer::Fail(msg) => return Err(Error::new(ErrorKind::Cache, msg)),
            Answer::Held(release, then) => {
                let _ = release.lock().unwrap().recv();
                return Self::answer(*then);
            }
        })
    }
}

fn hit(value: Option<Value>, absent: Vec<(Digest, u64)>) -> Found {
    Found::Hit(Box::new(Stored {
        value,
        absent,
        ..Stored::default()
    }))
}

impl Tier for ScriptedTier {
    fn get(&self, key: &Digest, _: &Want<'_>) -> Result<Found> {
        // Take the answer before counting the lookup: a test that waits for
        // the count knows its answer is taken.
        let scripted = self.script.lock().unwrap().pop_front();
        self.gets.lock().unwrap().push(*key);
        match scripted {
            Some(answer) => Self::answer(answer),
            None => Ok(match self.kept.lock().unwrap().get(key) {
                Some(value) => hit(value.clone(), Vec::new()),
                None => Found::Miss,
            }),
        }
    }

    fn put(&self, new: &NewResult<'_>) -> Result<()> {
        let value = new.value.cloned();
        self.puts
            .lock()
            .unwrap()
            .push((*new.key, value.clone(), new.persist));
        self.kept.lock().unwrap().insert(*new.key, value);
        Ok(())
    }

    fn claim(&self, key: &Digest, _: &Want<'_>) -> Result<Claimed> {
        *self.claims_asked.lock().unwrap() += 1;
        Ok(match self.published.lock().unwrap().pop_front() {
            Some(value) => {
                self.kept.lock().unwrap().insert(*key, value);
                Claimed::Published
            }
            None => Claimed::Mine(None),
        })
    }
}
