//! The canonical binary encoding of values, used in call keys and for stored
//! results.
//!
//! The encoding is type-directed: the type says what comes next, so nothing
//! self-describing is written, and two values are equal exactly when their
//! encodings are. Keys depend on it, so any change here must bump
//! [`crate::key::KEY_VERSION`].
//!
//! | type | bytes |
//! |---|---|
//! | `bool` | one byte, 0 or 1 |
//! | `s8`…`u64` | the integer, little-endian, at its own width |
//! | `f32`, `f64` | the IEEE bit pattern, little-endian; every NaN as the canonical quiet NaN (`0x7fc00000`, `0x7ff8000000000000`) |
//! | `char` | the scalar value as `u32` |
//! | `string` | length in bytes as `u64`, then UTF-8 |
//! | `list<T>` | element count as `u64`, then each element |
//! | `record` | each field in declaration order (names are in the type) |
//! | `tuple` | each element |
//! | `variant` | case index as `u32`, then the payload if the case has one |
//! | `enum` | case index as `u32` |
//! | `option<T>` | 0, or 1 then the value |
//! | `result<T, E>` | 0 then the `ok` payload, or 1 then the `err` payload (if the type has one) |
//! | `flags` | one bit per flag in declaration order, packed into `ceil(n / 8)` bytes, least significant bit first |
//! | `blob` | the 32-byte blake3 hash of the content, then its length as `u64` |
//!
//! Layer: bottom (data); imports only other bottom-layer modules.

use std::fmt;

use crate::digest::Digest;
use crate::types::Type;
use crate::value::{Blob, Value};

/// A value that does not fit its type, or bytes that do not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

fn mismatch(ty: &Type, v: &Value) -> CodecError {
    CodecError(format!("expected a {ty}, got {}", v.to_wave()))
}

const CANONICAL_NAN32: u32 = 0x7fc0_0000;
const CANONICAL_NAN64: u64 = 0x7ff8_0000_0000_0000;

/// `x`, with any NaN replaced by the canonical quiet NaN.
pub(crate) fn canonical_f32(x: f32) -> f32 {
    if x.is_nan() {
        f32::from_bits(CANONICAL_NAN32)
    } else {
        x
    }
}

/// `x`, with any NaN replaced by the canonical quiet NaN.
pub(crate) fn canonical_f64(x: f64) -> f64 {
    if x.is_nan() {
        f64::from_bits(CANONICAL_NAN64)
    } else {
        x
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u64).to_le_bytes());
}

/// Appends the canonical encoding of `v` as a `ty` to `out`.
///
/// # Errors
/// When `v` is not a value of `ty` (say, a string where a `u32` is wanted,
/// or a record without a field the type declares).
pub fn encode(v: &Value, ty: &Type, out: &mut Vec<u8>) -> Result<(), CodecError> {
    match (ty, v) {
        (Type::Bool, Value::Bool(b)) => out.push(u8::from(*b)),
        (Type::S8, Value::S8(n)) => out.extend_from_slice(&n.to_le_bytes()),
        (Type::S16, Value::S16(n)) => out.extend_from_slice(&n.to_le_bytes()),
        (Type::S32, Value::S32(n)) => out.extend_from_slice(&n.to_le_bytes()),
        (Type::S64, Value::S64(n)) => out.extend_from_slice(&n.to_le_bytes()),
        (Type::U8, Value::U8(n)) => out.push(*n),
        (Type::U16, Value::U16(n)) => out.extend_from_slice(&n.to_le_bytes()),
        (Type::U32, Value::U32(n)) => out.extend_from_slice(&n.to_le_bytes()),
        (Type::U64, Value::U64(n)) => out.extend_from_slice(&n.to_le_bytes()),
        (Type::F32, Value::F32(x)) => {
            let bits = if x.is_nan() {
                CANONICAL_NAN32
            } else {
                x.to_bits()
            };
            out.extend_from_slice(&bits.to_le_bytes());
        }
        (Type::F64, Value::F64(x)) => {
            let bits = if x.is_nan() {
                CANONICAL_NAN64
            } else {
                x.to_bits()
            };
            out.extend_from_slice(&bits.to_le_bytes());
        }
        (Type::Char, Value::Char(c)) => out.extend_from_slice(&u32::from(*c).to_le_bytes()),
        (Type::String, Value::String(s)) => {
            put_len(out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        (Type::List(elem), Value::List(vs)) => {
            put_len(out, vs.len());
            for v in vs {
                encode(v, elem, out)?;
            }
        }
        (Type::Record(fields), Value::Record(vs)) => {
            if fields.len() != vs.len() {
                return Err(mismatch(ty, v));
            }
            for ((name, fty), (vname, fv)) in fields.iter().zip(vs) {
                if name != vname {
                    return Err(CodecError(format!(
                        "record field `{vname}` found where `{name}` was expected"
                    )));
                }
                encode(fv, fty, out)?;
            }
        }
        (Type::Tuple(tys), Value::Tuple(vs)) => {
            if tys.len() != vs.len() {
                return Err(mismatch(ty, v));
            }
            for (t, v) in tys.iter().zip(vs) {
                encode(v, t, out)?;
            }
        }
        (Type::Variant(cases), Value::Variant(case, payload)) => {
            let i = cases
                .iter()
                .position(|(n, _)| n == case)
                .ok_or_else(|| CodecError(format!("unknown case `{case}` of {ty}")))?;
            out.extend_from_slice(&(i as u32).to_le_bytes());
            match (&cases[i].1, payload) {
                (Some(t), Some(p)) => encode(p, t, out)?,
                (None, None) => {}
                _ => {
                    return Err(CodecError(format!(
                        "wrong payload for case `{case}` of {ty}"
                    )))
                }
            }
        }
        (Type::Enum(cases), Value::Enum(case)) => {
            let i = cases
                .iter()
                .position(|n| n == case)
                .ok_or_else(|| CodecError(format!("unknown case `{case}` of {ty}")))?;
            out.extend_from_slice(&(i as u32).to_le_bytes());
        }
        (Type::Option(t), Value::Option(o)) => match o {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                encode(v, t, out)?;
            }
        },
        (Type::Result { ok, err }, Value::Result(r)) => {
            let (tag, t, p) = match r {
                Ok(p) => (0, ok, p),
                Err(p) => (1, err, p),
            };
            out.push(tag);
            match (t, p) {
                (Some(t), Some(p)) => encode(p, t, out)?,
                (None, None) => {}
                _ => return Err(mismatch(ty, v)),
            }
        }
        (Type::Flags(names), Value::Flags(set)) => {
            let mut bits = vec![0u8; names.len().div_ceil(8)];
            for flag in set {
                let i = names
                    .iter()
                    .position(|n| n == flag)
                    .ok_or_else(|| CodecError(format!("unknown flag `{flag}` of {ty}")))?;
                bits[i / 8] |= 1 << (i % 8);
            }
            out.extend_from_slice(&bits);
        }
        (Type::Blob { .. }, Value::Blob(b)) => {
            out.extend_from_slice(b.hash().as_bytes());
            out.extend_from_slice(&b.len().to_le_bytes());
        }
        _ => return Err(mismatch(ty, v)),
    }
    Ok(())
}

/// The canonical encoding of `v` as a `ty`.
///
/// # Errors
/// As [`encode`].
pub fn to_bytes(v: &Value, ty: &Type) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode(v, ty, &mut out)?;
    Ok(out)
}

/// Decodes a whole `ty` from `bytes`. Blobs come back as references to the
/// blob store ([`Blob`]s with their hash and length).
///
/// # Errors
/// When the bytes are short, left over, or not a `ty` (a bad tag or UTF-8).
pub fn from_bytes(bytes: &[u8], ty: &Type) -> Result<Value, CodecError> {
    let mut r = Reader { bytes, at: 0 };
    let v = r.value(ty)?;
    if r.at != bytes.len() {
        return Err(CodecError(format!(
            "{} bytes left over after a {ty}",
            bytes.len() - r.at
        )));
    }
    Ok(v)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let end = self.at.checked_add(N).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| CodecError("value ends early".into()))?;
        let out = self.bytes[self.at..end].try_into().expect("length checked");
        self.at = end;
        Ok(out)
    }

    fn len(&mut self) -> Result<usize, CodecError> {
        let n = u64::from_le_bytes(self.take()?);
        // Every element takes at least zero bytes, so bound by what is left
        // only for byte strings; lists are bounded as they are read.
        usize::try_from(n).map_err(|_| CodecError("length out of range".into()))
    }

    fn index(&mut self, count: usize) -> Result<usize, CodecError> {
        let i = u32::from_le_bytes(self.take()?) as usize;
        if i >= count {
            return Err(CodecError(format!("case index {i} out of range")));
        }
        Ok(i)
    }

    fn tag(&mut self) -> Result<bool, CodecError> {
        match self.take::<1>()?[0] {
            0 => Ok(false),
            1 => Ok(true),
            t => Err(CodecError(format!("bad tag {t}"))),
        }
    }

    fn opt(&mut self, ty: Option<&Type>) -> Result<Option<Box<Value>>, CodecError> {
        ty.map(|t| self.value(t).map(Box::new)).transpose()
    }

    fn value(&mut self, ty: &Type) -> Result<Value, CodecError> {
        Ok(match ty {
            Type::Bool => Value::Bool(self.tag()?),
            Type::S8 => Value::S8(i8::from_le_bytes(self.take()?)),
            Type::S16 => Value::S16(i16::from_le_bytes(self.take()?)),
            Type::S32 => Value::S32(i32::from_le_bytes(self.take()?)),
            Type::S64 => Value::S64(i64::from_le_bytes(self.take()?)),
            Type::U8 => Value::U8(self.take::<1>()?[0]),
            Type::U16 => Value::U16(u16::from_le_bytes(self.take()?)),
            Type::U32 => Value::U32(u32::from_le_bytes(self.take()?)),
            Type::U64 => Value::U64(u64::from_le_bytes(self.take()?)),
            Type::F32 => Value::F32(f32::from_bits(u32::from_le_bytes(self.take()?))),
            Type::F64 => Value::F64(f64::from_bits(u64::from_le_bytes(self.take()?))),
            Type::Char => {
                let c = u32::from_le_bytes(self.take()?);
                Value::Char(
                    char::from_u32(c).ok_or_else(|| CodecError(format!("bad char {c:#x}")))?,
                )
            }
            Type::String => {
                let n = self.len()?;
                if n > self.bytes.len() - self.at {
                    return Err(CodecError("string ends early".into()));
                }
                let s = std::str::from_utf8(&self.bytes[self.at..self.at + n])
                    .map_err(|_| CodecError("string is not UTF-8".into()))?;
                self.at += n;
                Value::String(s.to_string())
            }
            Type::List(elem) => {
                let n = self.len()?;
                let mut vs = Vec::with_capacity(n.min(self.bytes.len() - self.at));
                for _ in 0..n {
                    vs.push(self.value(elem)?);
                }
                Value::List(vs)
            }
            Type::Record(fields) => Value::Record(
                fields
                    .iter()
                    .map(|(n, t)| Ok((n.clone(), self.value(t)?)))
                    .collect::<Result<_, CodecError>>()?,
            ),
            Type::Tuple(tys) => Value::Tuple(
                tys.iter()
                    .map(|t| self.value(t))
                    .collect::<Result<_, _>>()?,
            ),
            Type::Variant(cases) => {
                let i = self.index(cases.len())?;
                let (name, t) = &cases[i];
                Value::Variant(name.clone(), self.opt(t.as_ref())?)
            }
            Type::Enum(cases) => Value::Enum(cases[self.index(cases.len())?].clone()),
            Type::Option(t) => Value::Option(if self.tag()? {
                Some(Box::new(self.value(t)?))
            } else {
                None
            }),
            Type::Result { ok, err } => Value::Result(if self.tag()? {
                Err(self.opt(err.as_deref())?)
            } else {
                Ok(self.opt(ok.as_deref())?)
            }),
            Type::Flags(names) => {
                let n = names.len().div_ceil(8);
                if n > self.bytes.len() - self.at {
                    return Err(CodecError("flags end early".into()));
                }
                let bits = &self.bytes[self.at..self.at + n];
                self.at += n;
                let set = names
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits[i / 8] & (1 << (i % 8)) != 0)
                    .map(|(_, name)| name.clone())
                    .collect();
                Value::Flags(set)
            }
            Type::Blob { .. } => {
                let hash = Digest::from_bytes(self.take()?);
                let len = u64::from_le_bytes(self.take()?);
                Value::Blob(Blob::stored(hash, len))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_type() -> (Type, Value) {
        let ty = Type::Tuple(vec![
            Type::Bool,
            Type::S16,
            Type::U64,
            Type::F64,
            Type::Char,
            Type::String,
            Type::List(Box::new(Type::U8)),
            Type::Record(vec![
                ("a".into(), Type::S32),
                ("b".into(), Type::Option(Box::new(Type::F32))),
            ]),
            Type::Variant(vec![
                ("none".into(), None),
                ("some".into(), Some(Type::String)),
            ]),
            Type::Enum(vec!["x".into(), "y".into()]),
            Type::Result {
                ok: None,
                err: Some(Box::new(Type::String)),
            },
            Type::Flags((0..10).map(|i| format!("f{i}")).collect()),
            Type::Blob { owned: true },
        ]);
        let v = Value::Tuple(vec![
            Value::Bool(true),
            Value::S16(-2),
            Value::U64(u64::MAX),
            Value::F64(1.5),
            Value::Char('é'),
            Value::String("héllo".into()),
            Value::List(vec![Value::U8(1), Value::U8(2)]),
            Value::Record(vec![
                ("a".into(), Value::S32(-7)),
                ("b".into(), Value::Option(Some(Box::new(Value::F32(0.25))))),
            ]),
            Value::Variant("some".into(), Some(Box::new(Value::String("p".into())))),
            Value::Enum("y".into()),
            Value::Result(Err(Some(Box::new(Value::String("bad".into()))))),
            Value::Flags(vec!["f1".into(), "f9".into()]),
            Value::Blob(Blob::from_bytes(b"data".to_vec())),
        ]);
        (ty, v)
    }

    #[test]
    fn round_trips_every_type() {
        let (ty, v) = every_type();
        let bytes = to_bytes(&v, &ty).unwrap();
        assert_eq!(from_bytes(&bytes, &ty).unwrap(), v);
    }

    #[test]
    fn layout_is_little_endian_and_fixed() {
        assert_eq!(
            to_bytes(&Value::U32(0x0102_0304), &Type::U32).unwrap(),
            [4, 3, 2, 1]
        );
        assert_eq!(
            to_bytes(&Value::String("ab".into()), &Type::String).unwrap(),
            [2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b']
        );
        let flags = Type::Flags((0..9).map(|i| i.to_string()).collect());
        assert_eq!(
            to_bytes(&Value::Flags(vec!["0".into(), "8".into()]), &flags).unwrap(),
            [1, 1]
        );
    }

    #[test]
    fn every_nan_encodes_the_same() {
        let a = to_bytes(
            &Value::F64(f64::from_bits(0x7ff8_0000_0000_0001)),
            &Type::F64,
        )
        .unwrap();
        let b = to_bytes(&Value::F64(-f64::NAN), &Type::F64).unwrap();
        assert_eq!(a, b);
        assert_ne!(
            to_bytes(&Value::F64(0.0), &Type::F64).unwrap(),
            to_bytes(&Value::F64(-0.0), &Type::F64).unwrap()
        );
    }

    #[test]
    fn mismatches_are_errors() {
        assert!(to_bytes(&Value::String("7".into()), &Type::U32).is_err());
        assert!(to_bytes(&Value::Enum("z".into()), &Type::Enum(vec!["x".into()])).is_err());
        let (ty, v) = every_type();
        let bytes = to_bytes(&v, &ty).unwrap();
        assert!(from_bytes(&bytes[..bytes.len() - 1], &ty).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(from_bytes(&longer, &ty).is_err());
    }
}
