//! A call's key, and its manifest: everything the key was made of, in a
//! form people read (`cairn cache show`) and `--explain` compares.

use crate::codec;
use crate::digest::Digest;
use crate::entry::{shorten, ArgManifest, KeyManifest};
use crate::error::{Error, ErrorKind, Result};
use crate::key::{self, KeyInputs};
use crate::sandbox::Grants;
use crate::store::Store;
use crate::task::Task;
use crate::types::FuncType;
use crate::value::{Blob, BlobSource, Value};

/// A call's key and what it was made of.
pub(crate) struct Keyed {
    pub(crate) key: Digest,
    /// The arguments' canonical encoding, all parameters in order.
    pub(crate) encoded: Vec<u8>,
    /// Where each argument's encoding ends in `encoded`.
    ends: Vec<usize>,
    sandbox: Digest,
}

impl Keyed {
    /// The key of `export` of `task` on `args`, and what it was made of.
    pub(crate) fn of(
        store: &Store,
        sandbox: &Digest,
        task: &Task,
        export: &str,
        ty: &FuncType,
        args: &[Value],
        grants: &Grants,
    ) -> Result<Keyed> {
        if args.len() != ty.params.len() {
            return Err(Error::new(
                ErrorKind::BadArguments,
                format!(
                    "`{export}` takes {} argument(s), {} given: {ty}",
                    ty.params.len(),
                    args.len()
                ),
            ));
        }
        let mut encoded = Vec::new();
        let mut ends = Vec::with_capacity(args.len());
        for (v, (name, t)) in args.iter().zip(&ty.params) {
            codec::encode(v, t, &mut encoded).map_err(|e| {
                Error::new(
                    ErrorKind::BadArguments,
                    format!("argument `{name}` of `{export}`: {e}"),
                )
            })?;
            ends.push(encoded.len());
        }
        let sandbox = if grants.is_empty() {
            *sandbox
        } else {
            grants.digest(|dir| store.hash_dir(dir))?
        };
        let key = key::call_key(&KeyInputs {
            closure: task.closure,
            export,
            func: ty,
            args: &encoded,
            sandbox,
        });
        Ok(Keyed {
            key,
            encoded,
            ends,
            sandbox,
        })
    }

    /// The key manifest of a call: what `cache show` prints and `--explain`
    /// compares.
    pub(crate) fn manifest(
        &self,
        store: &Store,
        task: &Task,
        path: &str,
        ty: &FuncType,
        args: &[Value],
        grants: &Grants,
    ) -> Result<KeyManifest> {
        let keyed = self;
        let mut start = 0;
        let mut arg_list = Vec::with_capacity(args.len());
        let mut inputs = Vec::new();
        for ((v, (name, _)), &end) in args.iter().zip(&ty.params).zip(&keyed.ends) {
            arg_list.push(ArgManifest {
                name: name.clone(),
                digest: Digest::of(&keyed.encoded[start..end]),
                shown: shown(v),
            });
            start = end;
            v.for_each_blob(&mut |b| {
                if let BlobSource::File(path, _) = &b.source {
                    inputs.push((b.hash(), path.clone()));
                }
            });
        }
        Ok(KeyManifest {
            component: task.name.clone(),
            closure: task.closure,
            export: path.to_string(),
            signature: ty.to_string(),
            args: arg_list,
            sandbox: keyed.sandbox,
            grants: grants.describe(|dir| store.hash_dir(dir))?,
            args_object: (Digest::of(&keyed.encoded), keyed.encoded.len() as u64),
            blobs: Vec::new(),
            inputs,
        })
    }
}

/// An argument for people: WAVE, a file-backed blob as `@path`, shortened.
fn shown(v: &Value) -> String {
    let text = match v {
        Value::Blob(Blob {
            source: BlobSource::File(path, _),
            ..
        }) => format!("@{}", path.display()),
        v => v.to_wave(),
    };
    shorten(&text, ArgManifest::SHOWN_MAX)
}
