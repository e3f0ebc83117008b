//! Values into and out of a wasmtime store: [`Value`] ↔ `Val`, with blobs
//! as resource handles whose bytes are opened only when the task reads them.

use wasmtime::component::{ResourceAny, Val};
use wasmtime::StoreContextMut;

use super::blobs::BlobHandle;
use super::sandbox::Sandbox;
use crate::codec;
use crate::error::{Error, ErrorKind, Result};
use crate::types::Type;
use crate::value::Value;

type Cx<'a> = StoreContextMut<'a, Sandbox>;

/// A store-independent value into a `Val` of `store`. Blobs become handles
/// whose bytes are opened only if the task reads them.
pub(crate) fn to_val(store: &mut Cx<'_>, v: &Value, ty: &Type) -> Result<Val> {
    let inner = |store: &mut Cx<'_>, v: &Value, t: &Type| to_val(store, v, t);
    let opt = |store: &mut Cx<'_>,
               v: &Option<Box<Value>>,
               t: Option<&Type>|
     -> Result<Option<Box<Val>>> {
        match (v, t) {
            (Some(v), Some(t)) => Ok(Some(Box::new(to_val(store, v, t)?))),
            _ => Ok(None),
        }
    };
    Ok(match (v, ty) {
        (Value::Bool(x), _) => Val::Bool(*x),
        (Value::S8(x), _) => Val::S8(*x),
        (Value::S16(x), _) => Val::S16(*x),
        (Value::S32(x), _) => Val::S32(*x),
        (Value::S64(x), _) => Val::S64(*x),
        (Value::U8(x), _) => Val::U8(*x),
        (Value::U16(x), _) => Val::U16(*x),
        (Value::U32(x), _) => Val::U32(*x),
        (Value::U64(x), _) => Val::U64(*x),
        (Value::F32(x), _) => Val::Float32(codec::canonical_f32(*x)),
        (Value::F64(x), _) => Val::Float64(codec::canonical_f64(*x)),
        (Value::Char(x), _) => Val::Char(*x),
        (Value::String(x), _) => Val::String(x.clone()),
        (Value::List(vs), Type::List(t)) => Val::List(
            vs.iter()
                .map(|v| inner(store, v, t))
                .collect::<Result<_>>()?,
        ),
        (Value::Record(fs), Type::Record(ts)) => Val::Record(
            fs.iter()
                .zip(ts)
                .map(|((n, v), (_, t))| Ok((n.clone(), inner(store, v, t)?)))
                .collect::<Result<_>>()?,
        ),
        (Value::Tuple(vs), Type::Tuple(ts)) => Val::Tuple(
            vs.iter()
                .zip(ts)
                .map(|(v, t)| inner(store, v, t))
                .collect::<Result<_>>()?,
        ),
        (Value::Variant(c, p), Type::Variant(cases)) => {
            let t = cases
                .iter()
                .find(|(n, _)| n == c)
                .and_then(|(_, t)| t.as_ref());
            Val::Variant(c.clone(), opt(store, p, t)?)
        }
        (Value::Enum(c), _) => Val::Enum(c.clone()),
        (Value::Option(p), Type::Option(t)) => Val::Option(opt(store, p, Some(t))?),
        (Value::Result(r), Type::Result { ok, err }) => Val::Result(match r {
            Ok(p) => Ok(opt(store, p, ok.as_deref())?),
            Err(p) => Err(opt(store, p, err.as_deref())?),
        }),
        (Value::Flags(fs), _) => Val::Flags(fs.clone()),
        (Value::Blob(b), Type::Blob { .. }) => {
            let handle = store
                .data_mut()
                .push_handle(BlobHandle::new(b.clone()))
                .map_err(|e| {
                    Error::new(
                        ErrorKind::TaskFailed,
                        format!("cannot hand a blob to the task: {e}"),
                    )
                })?;
            let any = ResourceAny::try_from_resource(handle, &mut *store)
                .map_err(|e| Error::internal(format!("cannot hand a blob to the task: {e:#}")))?;
            Val::Resource(any)
        }
        (v, t) => {
            return Err(Error::new(
                ErrorKind::BadArguments,
                format!("expected a {t}, got {}", v.to_wave()),
            ))
        }
    })
}

/// A `Val` of `store` into a store-independent value. Owned blob handles are
/// taken out of the store; borrowed ones are looked at.
pub(crate) fn from_val(store: &mut Cx<'_>, v: Val, ty: &Type) -> wasmtime::Result<Value> {
    fn opt(
        store: &mut Cx<'_>,
        v: Option<Box<Val>>,
        t: Option<&Type>,
    ) -> wasmtime::Result<Option<Box<Value>>> {
        match (v, t) {
            (Some(v), Some(t)) => Ok(Some(Box::new(from_val(store, *v, t)?))),
            _ => Ok(None),
        }
    }
    Ok(match (v, ty) {
        (Val::Bool(x), _) => Value::Bool(x),
        (Val::S8(x), _) => Value::S8(x),
        (Val::S16(x), _) => Value::S16(x),
        (Val::S32(x), _) => Value::S32(x),
        (Val::S64(x), _) => Value::S64(x),
        (Val::U8(x), _) => Value::U8(x),
        (Val::U16(x), _) => Value::U16(x),
        (Val::U32(x), _) => Value::U32(x),
        (Val::U64(x), _) => Value::U64(x),
        (Val::Float32(x), _) => Value::F32(codec::canonical_f32(x)),
        (Val::Float64(x), _) => Value::F64(codec::canonical_f64(x)),
        (Val::Char(x), _) => Value::Char(x),
        (Val::String(x), _) => Value::String(x),
        (Val::List(vs), Type::List(t)) => Value::List(
            vs.into_iter()
                .map(|v| from_val(store, v, t))
                .collect::<wasmtime::Result<_>>()?,
        ),
        (Val::Record(fs), Type::Record(ts)) => Value::Record(
            fs.into_iter()
                .zip(ts)
                .map(|((n, v), (_, t))| Ok((n, from_val(store, v, t)?)))
                .collect::<wasmtime::Result<_>>()?,
        ),
        (Val::Tuple(vs), Type::Tuple(ts)) => Value::Tuple(
            vs.into_iter()
                .zip(ts)
                .map(|(v, t)| from_val(store, v, t))
                .collect::<wasmtime::Result<_>>()?,
        ),
        (Val::Variant(c, p), Type::Variant(cases)) => {
            let t = cases
                .iter()
                .find(|(n, _)| *n == c)
                .and_then(|(_, t)| t.as_ref());
            Value::Variant(c, opt(store, p, t)?)
        }
        (Val::Enum(c), _) => Value::Enum(c),
        (Val::Option(p), Type::Option(t)) => Value::Option(opt(store, p, Some(t))?),
        (Val::Result(r), Type::Result { ok, err }) => Value::Result(match r {
            Ok(p) => Ok(opt(store, p, ok.as_deref())?),
            Err(p) => Err(opt(store, p, err.as_deref())?),
        }),
        (Val::Flags(fs), _) => Value::Flags(fs),
        (Val::Resource(any), Type::Blob { .. }) => {
            let res = any.try_into_resource::<BlobHandle>(&mut *store)?;
            if res.owned() {
                Value::Blob(store.data_mut().table.delete(res)?.blob)
            } else {
                Value::Blob(store.data().table.get(&res)?.blob.clone())
            }
        }
        (v, t) => wasmtime::bail!("the task returned {v:?} where its type says {t}"),
    })
}
