//! The types of task exports, independent of any wasmtime store.
//!
//! cairn reads an export's signature from the component's WIT (with
//! `wit-component`, without compiling anything) and keeps it by component
//! hash, so a cache hit can parse arguments and decode the stored result
//! without touching the component again.
//!
//! Layer: bottom (data); imports nothing from the crate.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use wasm_wave::wasm::{WasmType, WasmTypeKind};

/// A component-model value type, as far as cairn can pass it across a call.
///
/// It mirrors WIT's types structurally (names of aliases are dropped). The one
/// resource cairn knows is `cairn:task/blobs.blob`, shown here as [`Type::Blob`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
#[expect(missing_docs, reason = "the variants are WIT's types, named as in WIT")]
pub enum Type {
    Bool,
    S8,
    S16,
    S32,
    S64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
    Char,
    String,
    List(Box<Type>),
    Record(Vec<(String, Type)>),
    Tuple(Vec<Type>),
    Variant(Vec<(String, Option<Type>)>),
    Enum(Vec<String>),
    Option(Box<Type>),
    Result {
        ok: Option<Box<Type>>,
        err: Option<Box<Type>>,
    },
    Flags(Vec<String>),
    /// A handle to a `cairn:task/blobs.blob`, owned or borrowed.
    Blob {
        /// `own<blob>` when true, `borrow<blob>` otherwise.
        owned: bool,
    },
}

/// The signature of one exported function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FuncType {
    /// Parameters in order, with their WIT names.
    pub params: Vec<(String, Type)>,
    /// The result, if the function returns one.
    pub result: Option<Type>,
}

impl Type {
    /// Whether a value of this type contains a blob anywhere.
    pub fn has_blob(&self) -> bool {
        match self {
            Type::Blob { .. } => true,
            Type::List(t) | Type::Option(t) => t.has_blob(),
            Type::Record(fs) => fs.iter().any(|(_, t)| t.has_blob()),
            Type::Tuple(ts) => ts.iter().any(Type::has_blob),
            Type::Variant(cs) => cs
                .iter()
                .any(|(_, t)| t.as_ref().is_some_and(Type::has_blob)),
            Type::Result { ok, err } => {
                ok.as_ref().is_some_and(|t| t.has_blob())
                    || err.as_ref().is_some_and(|t| t.has_blob())
            }
            _ => false,
        }
    }
}

fn write_list<T>(
    f: &mut fmt::Formatter<'_>,
    items: &[T],
    mut each: impl FnMut(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        each(f, item)?;
    }
    Ok(())
}

/// WIT syntax, with records, variants, enums and flags written inline.
impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let simple = match self {
            Type::Bool => "bool",
            Type::S8 => "s8",
            Type::S16 => "s16",
            Type::S32 => "s32",
            Type::S64 => "s64",
            Type::U8 => "u8",
            Type::U16 => "u16",
            Type::U32 => "u32",
            Type::U64 => "u64",
            Type::F32 => "f32",
            Type::F64 => "f64",
            Type::Char => "char",
            Type::String => "string",
            _ => "",
        };
        if !simple.is_empty() {
            return f.write_str(simple);
        }
        match self {
            Type::List(t) => write!(f, "list<{t}>"),
            Type::Option(t) => write!(f, "option<{t}>"),
            Type::Record(fields) => {
                f.write_str("record { ")?;
                write_list(f, fields, |f, (n, t)| write!(f, "{n}: {t}"))?;
                f.write_str(" }")
            }
            Type::Tuple(ts) => {
                f.write_str("tuple<")?;
                write_list(f, ts, |f, t| write!(f, "{t}"))?;
                f.write_str(">")
            }
            Type::Variant(cases) => {
                f.write_str("variant { ")?;
                write_list(f, cases, |f, (n, t)| match t {
                    Some(t) => write!(f, "{n}({t})"),
                    None => f.write_str(n),
                })?;
                f.write_str(" }")
            }
            Type::Enum(names) => {
                f.write_str("enum { ")?;
                write_list(f, names, |f, n| f.write_str(n))?;
                f.write_str(" }")
            }
            Type::Flags(names) => {
                f.write_str("flags { ")?;
                write_list(f, names, |f, n| f.write_str(n))?;
                f.write_str(" }")
            }
            Type::Result { ok, err } => match (ok, err) {
                (None, None) => f.write_str("result"),
                (Some(ok), None) => write!(f, "result<{ok}>"),
                (None, Some(err)) => write!(f, "result<_, {err}>"),
                (Some(ok), Some(err)) => write!(f, "result<{ok}, {err}>"),
            },
            Type::Blob { owned: true } => f.write_str("blob"),
            Type::Blob { owned: false } => f.write_str("borrow<blob>"),
            _ => unreachable!("simple types are written above"),
        }
    }
}

/// `func(a: t, …) -> r`, as WIT writes it.
impl fmt::Display for FuncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("func(")?;
        write_list(f, &self.params, |f, (n, t)| write!(f, "{n}: {t}"))?;
        f.write_str(")")?;
        match &self.result {
            Some(r) => write!(f, " -> {r}"),
            None => Ok(()),
        }
    }
}

/// Lets `wasm-wave` parse arguments against cairn types. A blob parses as a
/// string (`"@path"` names a file); see [`crate::Value`].
impl WasmType for Type {
    fn kind(&self) -> WasmTypeKind {
        match self {
            Type::Bool => WasmTypeKind::Bool,
            Type::S8 => WasmTypeKind::S8,
            Type::S16 => WasmTypeKind::S16,
            Type::S32 => WasmTypeKind::S32,
            Type::S64 => WasmTypeKind::S64,
            Type::U8 => WasmTypeKind::U8,
            Type::U16 => WasmTypeKind::U16,
            Type::U32 => WasmTypeKind::U32,
            Type::U64 => WasmTypeKind::U64,
            Type::F32 => WasmTypeKind::F32,
            Type::F64 => WasmTypeKind::F64,
            Type::Char => WasmTypeKind::Char,
            Type::String | Type::Blob { .. } => WasmTypeKind::String,
            Type::List(_) => WasmTypeKind::List,
            Type::Record(_) => WasmTypeKind::Record,
            Type::Tuple(_) => WasmTypeKind::Tuple,
            Type::Variant(_) => WasmTypeKind::Variant,
            Type::Enum(_) => WasmTypeKind::Enum,
            Type::Option(_) => WasmTypeKind::Option,
            Type::Result { .. } => WasmTypeKind::Result,
            Type::Flags(_) => WasmTypeKind::Flags,
        }
    }

    fn list_element_type(&self) -> Option<Self> {
        match self {
            Type::List(t) => Some((**t).clone()),
            _ => None,
        }
    }

    fn record_fields(&self) -> Box<dyn Iterator<Item = (Cow<'_, str>, Self)> + '_> {
        match self {
            Type::Record(fs) => Box::new(
                fs.iter()
                    .map(|(n, t)| (Cow::Borrowed(n.as_str()), t.clone())),
            ),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn tuple_element_types(&self) -> Box<dyn Iterator<Item = Self> + '_> {
        match self {
            Type::Tuple(ts) => Box::new(ts.iter().cloned()),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn variant_cases(&self) -> Box<dyn Iterator<Item = (Cow<'_, str>, Option<Self>)> + '_> {
        match self {
            Type::Variant(cs) => Box::new(
                cs.iter()
                    .map(|(n, t)| (Cow::Borrowed(n.as_str()), t.clone())),
            ),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn enum_cases(&self) -> Box<dyn Iterator<Item = Cow<'_, str>> + '_> {
        match self {
            Type::Enum(ns) | Type::Flags(ns) => {
                Box::new(ns.iter().map(|n| Cow::Borrowed(n.as_str())))
            }
            _ => Box::new(std::iter::empty()),
        }
    }

    fn option_some_type(&self) -> Option<Self> {
        match self {
            Type::Option(t) => Some((**t).clone()),
            _ => None,
        }
    }

    fn result_types(&self) -> Option<(Option<Self>, Option<Self>)> {
        match self {
            Type::Result { ok, err } => Some((ok.as_deref().cloned(), err.as_deref().cloned())),
            _ => None,
        }
    }

    fn flags_names(&self) -> Box<dyn Iterator<Item = Cow<'_, str>> + '_> {
        self.enum_cases()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_wit() {
        let f = FuncType {
            params: vec![
                ("text".into(), Type::Blob { owned: false }),
                ("n".into(), Type::U32),
            ],
            result: Some(Type::Result {
                ok: Some(Box::new(Type::List(Box::new(Type::Record(vec![
                    ("word".into(), Type::String),
                    ("count".into(), Type::U32),
                ]))))),
                err: Some(Box::new(Type::String)),
            }),
        };
        assert_eq!(
            f.to_string(),
            "func(text: borrow<blob>, n: u32) -> result<list<record { word: string, count: u32 }>, string>"
        );
    }
}
