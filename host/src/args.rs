//! Arguments given as text — by parameter name or as one WAVE call — turned
//! into typed [`Value`]s.
//!
//! Layer: the host façade (it adds to `Host`).

use std::path::Path;

use wasm_wave::untyped::UntypedFuncCall;

use crate::error::{Error, ErrorKind, Result};
use crate::host::Host;
use crate::task::Task;
use crate::types::Type;
use crate::value::Value;

/// A call's arguments as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallArgs {
    /// `(parameter name, WAVE value)` pairs, as `--name value` gives them. A
    /// value for a `string` parameter may be bare (`--name Ada`); a value for
    /// a `blob` parameter is `@path`. An absent `bool` is `false`, an absent
    /// `option` is `none`. A value of `None` is a bare `--name`: `true` for
    /// a `bool` parameter, an error for any other.
    Named(Vec<(String, Option<String>)>),
    /// One WAVE function call, `f(1, "a")`, as `wasmtime run --invoke` takes
    /// it. Blob parameters take `"@path"`.
    Invoke(String),
}

fn bad(msg: String) -> Error {
    Error::new(ErrorKind::BadArguments, msg)
}

/// WIT names are kebab-case; accept `snake_case` on the command line too.
fn same_name(param: &str, given: &str) -> bool {
    param == given || param.replace('-', "_") == given
}

impl Host {
    /// Parses text arguments for a call of `task`. Returns the export's full
    /// path and the arguments in parameter order. `export` may be omitted
    /// when the task has one export (and is ignored for
    /// [`CallArgs::Invoke`], which names the function).
    ///
    /// `@path` in a blob position becomes a file-backed blob
    /// ([`Host::blob_from_file`]): hashed, or remembered by `stat`, never copied.
    ///
    /// # Errors
    /// [`ErrorKind::UnknownExport`]; [`ErrorKind::BadArguments`] for a
    /// missing, unknown or mistyped argument (the message names it and its
    /// type); [`ErrorKind::Io`] for an `@file` that cannot be read.
    pub fn parse_args(
        &self,
        task: &Task,
        export: Option<&str>,
        args: &CallArgs,
    ) -> Result<(String, Vec<Value>)> {
        let (export, ty, parsed) = match args {
            CallArgs::Invoke(text) => {
                let call = UntypedFuncCall::parse(text).map_err(|e| {
                    bad(format!(
                        "cannot parse --invoke `{text}`: {e}; write it as f(1, \"a\")"
                    ))
                })?;
                let (export, ty) = task.resolve(call.name())?;
                let values = call
                    .to_wasm_params::<Value>(ty.params.iter().map(|(_, t)| t))
                    .map_err(|e| bad(format!("arguments of `{}` {ty}: {e}", export.path())))?;
                (export, ty, values)
            }
            CallArgs::Named(pairs) => {
                let query = match export {
                    Some(q) => q.to_string(),
                    None => task.export(None)?.path(),
                };
                let (export, ty) = task.resolve(&query)?;
                for (given, _) in pairs {
                    if !ty.params.iter().any(|(p, _)| same_name(p, given)) {
                        return Err(bad(format!(
                            "`{}` has no parameter `{given}`; it takes {ty} (cairn's own options go before the component)",
                            export.path()
                        )));
                    }
                }
                let values = ty
                    .params
                    .iter()
                    .map(|(name, t)| {
                        let given = pairs.iter().rev().find(|(g, _)| same_name(name, g));
                        match (given, t) {
                            (Some((_, Some(text))), _) => parse_named(name, t, text),
                            (Some((_, None)), Type::Bool) => Ok(Value::Bool(true)),
                            (Some((_, None)), _) => Err(bad(format!(
                                "--{name} needs a value ({t}): write --{name} VALUE; only a bool parameter may be a bare --{name}"
                            ))),
                            // As command-line flags go: absent means false, or none.
                            (None, Type::Bool) => Ok(Value::Bool(false)),
                            (None, Type::Option(_)) => Ok(Value::Option(None)),
                            (None, _) => Err(bad(format!(
                                "missing --{name} ({t}) for `{}` {ty}",
                                export.path()
                            ))),
                        }
                    })
                    .collect::<Result<Vec<_>>>()?;
                (export, ty, values)
            }
        };
        let values = parsed
            .into_iter()
            .zip(&ty.params)
            .map(|(v, (name, t))| self.open_blobs(v, t, name))
            .collect::<Result<_>>()?;
        Ok((export.path(), values))
    }

    /// Replaces `"@path"` strings in blob positions with file-backed blobs.
    fn open_blobs(&self, v: Value, ty: &Type, param: &str) -> Result<Value> {
        if !ty.has_blob() {
            return Ok(v);
        }
        let each = |vs: Vec<Value>, ts: &mut dyn Iterator<Item = &Type>| -> Result<Vec<Value>> {
            vs.into_iter()
                .zip(ts)
                .map(|(v, t)| self.open_blobs(v, t, param))
                .collect()
        };
        let boxed = |v: Option<Box<Value>>, t: Option<&Type>| -> Result<Option<Box<Value>>> {
            match (v, t) {
                (Some(v), Some(t)) => Ok(Some(Box::new(self.open_blobs(*v, t, param)?))),
                (v, _) => Ok(v),
            }
        };
        Ok(match (v, ty) {
            (Value::String(s), Type::Blob { .. }) => match s.strip_prefix('@') {
                Some(path) => Value::Blob(self.blob_from_file(Path::new(path)).map_err(|e| {
                    Error::new(
                        e.kind(),
                        format!("argument `{param}`: {e}; check the path after @"),
                    )
                })?),
                None => {
                    return Err(bad(format!(
                        "argument `{param}` is a blob: give a file as @path (got `{s}`)"
                    )))
                }
            },
            (Value::List(vs), Type::List(t)) => {
                let n = vs.len();
                Value::List(each(vs, &mut std::iter::repeat_n(&**t, n))?)
            }
            (Value::Tuple(vs), Type::Tuple(ts)) => Value::Tuple(each(vs, &mut ts.iter())?),
            (Value::Record(fs), Type::Record(ts)) => {
                let (names, vs): (Vec<String>, Vec<Value>) = fs.into_iter().unzip();
                let vs = each(vs, &mut ts.iter().map(|(_, t)| t))?;
                Value::Record(names.into_iter().zip(vs).collect())
            }
            (Value::Option(o), Type::Option(t)) => Value::Option(boxed(o, Some(t))?),
            (Value::Variant(c, p), Type::Variant(cases)) => {
                let t = cases
                    .iter()
                    .find(|(n, _)| *n == c)
                    .and_then(|(_, t)| t.as_ref());
                Value::Variant(c, boxed(p, t)?)
            }
            (Value::Result(r), Type::Result { ok, err }) => Value::Result(match r {
                Ok(p) => Ok(boxed(p, ok.as_deref())?),
                Err(p) => Err(boxed(p, err.as_deref())?),
            }),
            (v, _) => v,
        })
    }
}

/// One `--name value`: WAVE, or a bare string where a string or blob is wanted.
fn parse_named(name: &str, ty: &Type, text: &str) -> Result<Value> {
    match Value::parse(ty, text) {
        Ok(v) => Ok(v),
        Err(_) if matches!(ty, Type::String | Type::Blob { .. }) => {
            Ok(Value::String(text.to_string()))
        }
        Err(e) => Err(bad(format!(
            "argument --{name} `{text}` is not a {ty}: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_strings_and_wave_values() {
        assert_eq!(
            parse_named("n", &Type::String, "Ada").unwrap(),
            Value::String("Ada".into())
        );
        assert_eq!(
            parse_named("n", &Type::String, "\"A b\"").unwrap(),
            Value::String("A b".into())
        );
        assert_eq!(parse_named("n", &Type::U32, "7").unwrap(), Value::U32(7));
        let err = parse_named("n", &Type::U32, "seven").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadArguments);
        assert!(err.to_string().contains("--n"), "{err}");
    }

    #[test]
    fn snake_case_names_match_kebab_params() {
        assert!(same_name("max-words", "max_words"));
        assert!(same_name("max-words", "max-words"));
        assert!(!same_name("max-words", "max"));
    }
}
