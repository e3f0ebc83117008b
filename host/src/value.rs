//! Values that cross a call, independent of any wasmtime store.
//!
//! [`Value`] mirrors `wasmtime::component::Val` one to one, plus
//! [`Value::Blob`]: a content-addressed handle that can be keyed, stored and
//! passed to another store by its hash. Values parse from and print as WAVE
//! (the syntax of `wasmtime run --invoke`) through `wasm-wave`.
//!
//! Layer: bottom (data); imports only other bottom-layer modules.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasm_wave::wasm::{WasmType, WasmTypeKind, WasmValue, WasmValueError};

use crate::bytes::{Bytes, FileStamp};
use crate::digest::Digest;
use crate::error::Error;
use crate::types::Type;

/// A component-model value.
///
/// Build one directly (`Value::U32(7)`, `Value::String("hi".into())`), or
/// parse WAVE text with [`Value::parse`]. Record fields are kept in the
/// record type's declaration order.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
#[expect(missing_docs, reason = "the variants are WIT's types, named as in WIT")]
pub enum Value {
    Bool(bool),
    S8(i8),
    S16(i16),
    S32(i32),
    S64(i64),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64),
    Char(char),
    String(String),
    List(Vec<Value>),
    Record(Vec<(String, Value)>),
    Tuple(Vec<Value>),
    Variant(String, Option<Box<Value>>),
    Enum(String),
    Option(Option<Box<Value>>),
    Result(Result<Option<Box<Value>>, Option<Box<Value>>>),
    Flags(Vec<String>),
    /// Immutable bytes passed by reference; see [`Blob`].
    Blob(Blob),
}

/// Content-addressed bytes passed by reference.
///
/// Two blobs are equal when their hashes are. A blob made from a file is
/// read only when a task that receives it actually runs; a cache lookup uses
/// its hash alone.
#[derive(Clone, Debug)]
pub struct Blob {
    hash: Digest,
    len: u64,
    pub(crate) source: BlobSource,
}

#[derive(Clone, Debug)]
pub(crate) enum BlobSource {
    /// The bytes of a file on disk, hashed when it was opened, and what
    /// `stat` said of it then.
    File(PathBuf, FileStamp),
    /// Bytes in memory (made by a task, or by the embedding app).
    Bytes(Arc<[u8]>),
    /// An object of the cache's blob store.
    Stored,
}

impl Blob {
    /// The bytes of a blob that lives in memory or in a file; `None` for a
    /// stored one (the cache opens those, verified).
    pub(crate) fn open_uncached(&self) -> Option<crate::Result<Bytes>> {
        match &self.source {
            BlobSource::Bytes(b) => Some(Ok(Bytes::Memory(b.clone()))),
            BlobSource::File(path, _) => Some(
                crate::bytes::open_file(path)
                    .map_err(|e| Error::io(format_args!("cannot read {}", path.display()), e)),
            ),
            BlobSource::Stored => None,
        }
    }

    /// A blob of `bytes`.
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Blob {
        let bytes = bytes.into();
        Blob {
            hash: Digest::of(&bytes),
            len: bytes.len() as u64,
            source: BlobSource::Bytes(bytes),
        }
    }

    pub(crate) fn from_file(path: &Path, hash: Digest, len: u64, stamp: FileStamp) -> Blob {
        Blob {
            hash,
            len,
            source: BlobSource::File(path.to_path_buf(), stamp),
        }
    }

    pub(crate) fn stored(hash: Digest, len: u64) -> Blob {
        Blob {
            hash,
            len,
            source: BlobSource::Stored,
        }
    }

    /// The blake3 hash of the content.
    pub fn hash(&self) -> Digest {
        self.hash
    }

    /// The content's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the blob is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl PartialEq for Blob {
    fn eq(&self, other: &Blob) -> bool {
        self.hash == other.hash
    }
}

impl Value {
    /// Parses WAVE `text` as a value of type `ty`.
    ///
    /// A blob parses from a string: `"@path"` names a file (resolved by
    /// [`crate::Host::call`]'s caller, e.g. the CLI).
    ///
    /// # Errors
    /// The WAVE parser's message, when `text` is not a `ty`.
    pub fn parse(ty: &Type, text: &str) -> Result<Value, wasm_wave::parser::ParserError> {
        wasm_wave::from_str(ty, text)
    }

    /// This value in WAVE. Blobs print as `"blob:HASH"`.
    pub fn to_wave(&self) -> String {
        wasm_wave::to_string(self).unwrap_or_else(|e| format!("<unprintable: {e}>"))
    }

    /// Every blob inside this value, with its path from the root, named
    /// `root`, then `.field`, `[index]`, `.ok`, `.err`, `.some` or `.case`
    /// (as in `result.ok.model`).
    pub fn blobs_with_paths(&self, root: &str) -> Vec<(String, Blob)> {
        let mut out = Vec::new();
        self.walk_blobs(root.to_string(), &mut out);
        out
    }

    fn walk_blobs(&self, at: String, out: &mut Vec<(String, Blob)>) {
        match self {
            Value::Blob(b) => out.push((at, b.clone())),
            Value::List(vs) | Value::Tuple(vs) => {
                for (i, v) in vs.iter().enumerate() {
                    v.walk_blobs(format!("{at}[{i}]"), out);
                }
            }
            Value::Record(fs) => fs
                .iter()
                .for_each(|(n, v)| v.walk_blobs(format!("{at}.{n}"), out)),
            Value::Variant(c, Some(v)) => v.walk_blobs(format!("{at}.{c}"), out),
            Value::Option(Some(v)) => v.walk_blobs(format!("{at}.some"), out),
            Value::Result(Ok(Some(v))) => v.walk_blobs(format!("{at}.ok"), out),
            Value::Result(Err(Some(v))) => v.walk_blobs(format!("{at}.err"), out),
            _ => {}
        }
    }

    /// Visits every blob inside this value.
    pub fn for_each_blob(&self, f: &mut impl FnMut(&Blob)) {
        match self {
            Value::Blob(b) => f(b),
            Value::List(vs) | Value::Tuple(vs) => vs.iter().for_each(|v| v.for_each_blob(f)),
            Value::Record(fs) => fs.iter().for_each(|(_, v)| v.for_each_blob(f)),
            Value::Variant(_, Some(v))
            | Value::Option(Some(v))
            | Value::Result(Ok(Some(v)) | Err(Some(v))) => v.for_each_blob(f),
            _ => {}
        }
    }
}

impl Value {
    /// Visits every blob inside this value, mutably.
    pub(crate) fn for_each_blob_mut(&mut self, f: &mut impl FnMut(&mut Blob)) {
        match self {
            Value::Blob(b) => f(b),
            Value::List(vs) | Value::Tuple(vs) => {
                vs.iter_mut().for_each(|v| v.for_each_blob_mut(f))
            }
            Value::Record(fs) => fs.iter_mut().for_each(|(_, v)| v.for_each_blob_mut(f)),
            Value::Variant(_, Some(v))
            | Value::Option(Some(v))
            | Value::Result(Ok(Some(v)) | Err(Some(v))) => v.for_each_blob_mut(f),
            _ => {}
        }
    }
}

fn boxed(v: Option<Value>) -> Option<Box<Value>> {
    v.map(Box::new)
}

impl WasmValue for Value {
    type Type = Type;

    fn kind(&self) -> WasmTypeKind {
        match self {
            Value::Bool(_) => WasmTypeKind::Bool,
            Value::S8(_) => WasmTypeKind::S8,
            Value::S16(_) => WasmTypeKind::S16,
            Value::S32(_) => WasmTypeKind::S32,
            Value::S64(_) => WasmTypeKind::S64,
            Value::U8(_) => WasmTypeKind::U8,
            Value::U16(_) => WasmTypeKind::U16,
            Value::U32(_) => WasmTypeKind::U32,
            Value::U64(_) => WasmTypeKind::U64,
            Value::F32(_) => WasmTypeKind::F32,
            Value::F64(_) => WasmTypeKind::F64,
            Value::Char(_) => WasmTypeKind::Char,
            Value::String(_) | Value::Blob(_) => WasmTypeKind::String,
            Value::List(_) => WasmTypeKind::List,
            Value::Record(_) => WasmTypeKind::Record,
            Value::Tuple(_) => WasmTypeKind::Tuple,
            Value::Variant(..) => WasmTypeKind::Variant,
            Value::Enum(_) => WasmTypeKind::Enum,
            Value::Option(_) => WasmTypeKind::Option,
            Value::Result(_) => WasmTypeKind::Result,
            Value::Flags(_) => WasmTypeKind::Flags,
        }
    }

    fn make_bool(val: bool) -> Self {
        Value::Bool(val)
    }
    fn make_s8(val: i8) -> Self {
        Value::S8(val)
    }
    fn make_s16(val: i16) -> Self {
        Value::S16(val)
    }
    fn make_s32(val: i32) -> Self {
        Value::S32(val)
    }
    fn make_s64(val: i64) -> Self {
        Value::S64(val)
    }
    fn make_u8(val: u8) -> Self {
        Value::U8(val)
    }
    fn make_u16(val: u16) -> Self {
        Value::U16(val)
    }
    fn make_u32(val: u32) -> Self {
        Value::U32(val)
    }
    fn make_u64(val: u64) -> Self {
        Value::U64(val)
    }
    fn make_f32(val: f32) -> Self {
        Value::F32(val)
    }
    fn make_f64(val: f64) -> Self {
        Value::F64(val)
    }
    fn make_char(val: char) -> Self {
        Value::Char(val)
    }
    fn make_string(val: Cow<str>) -> Self {
        Value::String(val.into_owned())
    }
    fn make_list(_ty: &Type, vals: impl IntoIterator<Item = Self>) -> Result<Self, WasmValueError> {
        Ok(Value::List(vals.into_iter().collect()))
    }
    fn make_record<'a>(
        ty: &Type,
        fields: impl IntoIterator<Item = (&'a str, Self)>,
    ) -> Result<Self, WasmValueError> {
        let mut given: Vec<(&str, Value)> = fields.into_iter().collect();
        let mut out = Vec::with_capacity(given.len());
        for (name, _) in ty.record_fields() {
            let at = given
                .iter()
                .position(|(n, _)| *n == name)
                .ok_or_else(|| WasmValueError::MissingField(name.to_string()))?;
            out.push((name.into_owned(), given.swap_remove(at).1));
        }
        match given.first() {
            Some((unknown, _)) => Err(WasmValueError::UnknownField(unknown.to_string())),
            None => Ok(Value::Record(out)),
        }
    }
    fn make_tuple(
        _ty: &Type,
        vals: impl IntoIterator<Item = Self>,
    ) -> Result<Self, WasmValueError> {
        Ok(Value::Tuple(vals.into_iter().collect()))
    }
    fn make_variant(_ty: &Type, case: &str, val: Option<Self>) -> Result<Self, WasmValueError> {
        Ok(Value::Variant(case.to_string(), boxed(val)))
    }
    fn make_enum(_ty: &Type, case: &str) -> Result<Self, WasmValueError> {
        Ok(Value::Enum(case.to_string()))
    }
    fn make_option(_ty: &Type, val: Option<Self>) -> Result<Self, WasmValueError> {
        Ok(Value::Option(boxed(val)))
    }
    fn make_result(
        _ty: &Type,
        val: Result<Option<Self>, Option<Self>>,
    ) -> Result<Self, WasmValueError> {
        Ok(Value::Result(val.map(boxed).map_err(boxed)))
    }
    fn make_flags<'a>(
        ty: &Type,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, WasmValueError> {
        let given: Vec<&str> = names.into_iter().collect();
        // Flags are kept in declaration order, whatever order they were written in.
        let out = ty
            .flags_names()
            .filter(|n| given.contains(&n.as_ref()))
            .map(Cow::into_owned)
            .collect();
        Ok(Value::Flags(out))
    }

    fn unwrap_bool(&self) -> bool {
        matches!(self, Value::Bool(true))
    }
    fn unwrap_s8(&self) -> i8 {
        match self {
            Value::S8(v) => *v,
            _ => 0,
        }
    }
    fn unwrap_s16(&self) -> i16 {
        match self {
            Value::S16(v) => *v,
            _ => 0,
        }
    }
    fn unwrap_s32(&self) -> i32 {
        match self {
            Value::S32(v) => *v,
            _ => 0,
        }
    }
    fn unwrap_s64(&self) -> i64 {
        match self {
            Value::S64(v) => *v,
            _ => 0,
        }
    }
    fn unwrap_u8(&self) -> u8 {
        match self {
            Value::U8(v) => *v,
            _ => 0,
        }
    }
    fn unwrap_u16(&self) -> u16 {
        match self {
            Value::U16(v) => *v,
            _ => 0,
        }
    }
    fn unwrap_u32(&self) -> u32 {
        match self {
            Value::U32(v) => *v,
            _ => 0,
        }
    }
    fn unwrap_u64(&self) -> u64 {
        match self {
            Value::U64(v) => *v,
            _ => 0,
        }
    }
    fn unwrap_f32(&self) -> f32 {
        match self {
            Value::F32(v) => *v,
            _ => 0.0,
        }
    }
    fn unwrap_f64(&self) -> f64 {
        match self {
            Value::F64(v) => *v,
            _ => 0.0,
        }
    }
    fn unwrap_char(&self) -> char {
        match self {
            Value::Char(v) => *v,
            _ => '\0',
        }
    }
    fn unwrap_string(&self) -> Cow<'_, str> {
        match self {
            Value::String(s) => Cow::Borrowed(s),
            Value::Blob(b) => Cow::Owned(format!("blob:{}", b.hash())),
            _ => Cow::Borrowed(""),
        }
    }
    fn unwrap_list(&self) -> Box<dyn Iterator<Item = Cow<'_, Self>> + '_> {
        match self {
            Value::List(vs) | Value::Tuple(vs) => Box::new(vs.iter().map(Cow::Borrowed)),
            _ => Box::new(std::iter::empty()),
        }
    }
    fn unwrap_record(&self) -> Box<dyn Iterator<Item = (Cow<'_, str>, Cow<'_, Self>)> + '_> {
        match self {
            Value::Record(fs) => Box::new(
                fs.iter()
                    .map(|(n, v)| (Cow::Borrowed(n.as_str()), Cow::Borrowed(v))),
            ),
            _ => Box::new(std::iter::empty()),
        }
    }
    fn unwrap_tuple(&self) -> Box<dyn Iterator<Item = Cow<'_, Self>> + '_> {
        self.unwrap_list()
    }
    fn unwrap_variant(&self) -> (Cow<'_, str>, Option<Cow<'_, Self>>) {
        match self {
            Value::Variant(case, v) => (Cow::Borrowed(case), v.as_deref().map(Cow::Borrowed)),
            _ => (Cow::Borrowed(""), None),
        }
    }
    fn unwrap_enum(&self) -> Cow<'_, str> {
        match self {
            Value::Enum(case) => Cow::Borrowed(case),
            _ => Cow::Borrowed(""),
        }
    }
    fn unwrap_option(&self) -> Option<Cow<'_, Self>> {
        match self {
            Value::Option(v) => v.as_deref().map(Cow::Borrowed),
            _ => None,
        }
    }
    fn unwrap_result(&self) -> Result<Option<Cow<'_, Self>>, Option<Cow<'_, Self>>> {
        match self {
            Value::Result(Ok(v)) => Ok(v.as_deref().map(Cow::Borrowed)),
            Value::Result(Err(v)) => Err(v.as_deref().map(Cow::Borrowed)),
            _ => Ok(None),
        }
    }
    fn unwrap_flags(&self) -> Box<dyn Iterator<Item = Cow<'_, str>> + '_> {
        match self {
            Value::Flags(ns) => Box::new(ns.iter().map(|n| Cow::Borrowed(n.as_str()))),
            _ => Box::new(std::iter::empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Type {
        Type::Record(vec![
            ("name".into(), Type::String),
            (
                "tags".into(),
                Type::Flags(vec!["a".into(), "b".into(), "c".into()]),
            ),
            ("n".into(), Type::Option(Box::new(Type::U8))),
        ])
    }

    #[test]
    fn wave_round_trips_in_declaration_order() {
        let v = Value::parse(&rec(), "{tags: {c, a}, name: \"x\"}").unwrap();
        assert_eq!(
            v,
            Value::Record(vec![
                ("name".into(), Value::String("x".into())),
                ("tags".into(), Value::Flags(vec!["a".into(), "c".into()])),
                ("n".into(), Value::Option(None)),
            ])
        );
        assert_eq!(Value::parse(&rec(), &v.to_wave()).unwrap(), v);
    }

    #[test]
    fn blob_paths_name_where_each_blob_is() {
        let b = Blob::from_bytes(b"x".to_vec());
        let v = Value::Result(Ok(Some(Box::new(Value::Record(vec![
            ("model".into(), Value::Blob(b.clone())),
            (
                "parts".into(),
                Value::List(vec![Value::U8(1), Value::Blob(b.clone())]),
            ),
        ])))));
        let paths: Vec<String> = v
            .blobs_with_paths("result")
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(paths, ["result.ok.model", "result.ok.parts[1]"]);
    }

    #[test]
    fn wrong_type_is_an_error() {
        assert!(Value::parse(&Type::U32, "\"seven\"").is_err());
        assert!(Value::parse(&Type::U8, "300").is_err());
        assert!(
            Value::parse(&rec(), "{tags: {}}").is_err(),
            "a missing field that is not an option"
        );
    }
}

/// A `wasmtime::component::Val` as a [`Value`], for embedders that already
/// hold `Val`s. Fails for resources (pass blobs as [`Value::Blob`]), maps,
/// fixed-length lists, futures, streams and error contexts.
impl TryFrom<&wasmtime::component::Val> for Value {
    type Error = String;

    fn try_from(v: &wasmtime::component::Val) -> Result<Value, String> {
        use wasmtime::component::Val;
        let boxed = |v: &Option<Box<Val>>| -> Result<Option<Box<Value>>, String> {
            v.as_deref()
                .map(|v| Value::try_from(v).map(Box::new))
                .transpose()
        };
        let all = |vs: &[Val]| {
            vs.iter()
                .map(Value::try_from)
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(match v {
            Val::Bool(x) => Value::Bool(*x),
            Val::S8(x) => Value::S8(*x),
            Val::U8(x) => Value::U8(*x),
            Val::S16(x) => Value::S16(*x),
            Val::U16(x) => Value::U16(*x),
            Val::S32(x) => Value::S32(*x),
            Val::U32(x) => Value::U32(*x),
            Val::S64(x) => Value::S64(*x),
            Val::U64(x) => Value::U64(*x),
            Val::Float32(x) => Value::F32(*x),
            Val::Float64(x) => Value::F64(*x),
            Val::Char(x) => Value::Char(*x),
            Val::String(x) => Value::String(x.clone()),
            Val::List(vs) => Value::List(all(vs)?),
            Val::Tuple(vs) => Value::Tuple(all(vs)?),
            Val::Record(fs) => Value::Record(
                fs.iter()
                    .map(|(n, v)| Ok((n.clone(), Value::try_from(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            Val::Variant(c, p) => Value::Variant(c.clone(), boxed(p)?),
            Val::Enum(c) => Value::Enum(c.clone()),
            Val::Option(p) => Value::Option(boxed(p)?),
            Val::Result(Ok(p)) => Value::Result(Ok(boxed(p)?)),
            Val::Result(Err(p)) => Value::Result(Err(boxed(p)?)),
            Val::Flags(fs) => Value::Flags(fs.clone()),
            other => return Err(format!("{other:?} cannot cross a cached call")),
        })
    }
}

#[cfg(test)]
mod val_tests {
    use super::*;
    use wasmtime::component::Val;

    #[test]
    fn vals_convert() {
        let v = Val::Record(vec![
            ("a".into(), Val::List(vec![Val::U8(1)])),
            (
                "b".into(),
                Val::Option(Some(Box::new(Val::String("x".into())))),
            ),
        ]);
        assert_eq!(
            Value::try_from(&v).unwrap(),
            Value::Record(vec![
                ("a".into(), Value::List(vec![Value::U8(1)])),
                (
                    "b".into(),
                    Value::Option(Some(Box::new(Value::String("x".into()))))
                ),
            ])
        );
    }
}
