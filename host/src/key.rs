//! Cache keys: one pure, versioned function of everything a call's result
//! can depend on.
//!
//! ```text
//! closure(c) = H("cairn.closure", KEY_VERSION, H(bytes(c)), impure(c),
//!                count, for each bound import in sorted order: (name, closure(child)))
//! key(call)  = H("cairn.call", KEY_VERSION, closure(c), export path,
//!                canonical function type, canonical arguments, sandbox digest)
//! ```
//!
//! Every field is length-prefixed (`u64`, little-endian), so no two distinct
//! inputs hash the same bytes. Arguments use the canonical encoding of
//! [`crate::codec`]; blobs enter by hash, so computing a key never reads blob
//! content. The wasmtime version is deliberately absent: a deterministic guest
//! answers the same on every engine, so the cache survives host upgrades.
//!
//! If any input to a hash changes meaning, bump [`KEY_VERSION`].
//!
//! Layer: bottom (data); imports only other bottom-layer modules.

use crate::digest::Digest;
use crate::types::{FuncType, Type};

/// The version of the key derivation (and of the canonical encodings under
/// it). Changing it makes every old entry unreachable, never wrong.
pub const KEY_VERSION: u32 = 2;

/// A hasher whose every field is length-prefixed.
struct Fields(blake3::Hasher);

impl Fields {
    fn new(domain: &str) -> Fields {
        let mut f = Fields(blake3::Hasher::new());
        f.bytes(domain.as_bytes());
        f.0.update(&KEY_VERSION.to_le_bytes());
        f
    }

    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.update(&(b.len() as u64).to_le_bytes());
        self.0.update(b);
        self
    }

    fn digest(self) -> Digest {
        self.0.finalize().into()
    }
}

/// The code closure of a component: its own hash, whether it runs impure
/// (real clocks and randomness), plus the closures of the components bound to
/// its imports, by import name.
///
/// A component with no bound imports still gets a closure distinct from its
/// bare hash, so adding bindings later never collides with an old key.
pub fn closure(component: Digest, impure: bool, bound: &[(String, Digest)]) -> Digest {
    let mut sorted: Vec<&(String, Digest)> = bound.iter().collect();
    sorted.sort();
    let mut f = Fields::new("cairn.closure");
    f.bytes(component.as_bytes());
    f.bytes(&[u8::from(impure)]);
    f.0.update(&(sorted.len() as u64).to_le_bytes());
    for (name, child) in sorted {
        f.bytes(name.as_bytes()).bytes(child.as_bytes());
    }
    f.digest()
}

/// Everything a call's key is made of.
#[derive(Debug, Clone, Copy)]
pub struct KeyInputs<'a> {
    /// The closure of the called component (see [`closure`]).
    pub closure: Digest,
    /// The export path, as `func` or `interface#func`.
    pub export: &'a str,
    /// The function's type.
    pub func: &'a FuncType,
    /// The canonical encoding of the arguments, in parameter order.
    pub args: &'a [u8],
    /// The digest of the capabilities granted to the call (see [`crate::sandbox`]).
    pub sandbox: Digest,
}

/// Derives a call's key. Pure: the same inputs give the same key on every
/// machine and every run.
pub fn call_key(k: &KeyInputs<'_>) -> Digest {
    // Room for a small signature without growing four times on every call.
    let mut ty = Vec::with_capacity(128);
    encode_func(k.func, &mut ty);
    let mut f = Fields::new("cairn.call");
    f.bytes(k.closure.as_bytes())
        .bytes(k.export.as_bytes())
        .bytes(&ty)
        .bytes(k.args)
        .bytes(k.sandbox.as_bytes());
    f.digest()
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_count(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u64).to_le_bytes());
}

/// The canonical encoding of a function type: parameter names and types, then
/// the result.
fn encode_func(f: &FuncType, out: &mut Vec<u8>) {
    put_count(out, f.params.len());
    for (name, ty) in &f.params {
        put_str(out, name);
        encode_type(ty, out);
    }
    encode_opt(f.result.as_ref(), out);
}

fn encode_opt(t: Option<&Type>, out: &mut Vec<u8>) {
    match t {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            encode_type(t, out);
        }
    }
}

/// The canonical encoding of a type: a tag byte, then its parts.
fn encode_type(t: &Type, out: &mut Vec<u8>) {
    let tag: u8 = match t {
        Type::Bool => 0,
        Type::S8 => 1,
        Type::S16 => 2,
        Type::S32 => 3,
        Type::S64 => 4,
        Type::U8 => 5,
        Type::U16 => 6,
        Type::U32 => 7,
        Type::U64 => 8,
        Type::F32 => 9,
        Type::F64 => 10,
        Type::Char => 11,
        Type::String => 12,
        Type::List(_) => 13,
        Type::Record(_) => 14,
        Type::Tuple(_) => 15,
        Type::Variant(_) => 16,
        Type::Enum(_) => 17,
        Type::Option(_) => 18,
        Type::Result { .. } => 19,
        Type::Flags(_) => 20,
        Type::Blob { owned: true } => 21,
        Type::Blob { owned: false } => 22,
    };
    out.push(tag);
    match t {
        Type::List(e) | Type::Option(e) => encode_type(e, out),
        Type::Record(fields) => {
            put_count(out, fields.len());
            for (n, t) in fields {
                put_str(out, n);
                encode_type(t, out);
            }
        }
        Type::Tuple(ts) => {
            put_count(out, ts.len());
            ts.iter().for_each(|t| encode_type(t, out));
        }
        Type::Variant(cases) => {
            put_count(out, cases.len());
            for (n, t) in cases {
                put_str(out, n);
                encode_opt(t.as_ref(), out);
            }
        }
        Type::Enum(names) | Type::Flags(names) => {
            put_count(out, names.len());
            names.iter().for_each(|n| put_str(out, n));
        }
        Type::Result { ok, err } => {
            encode_opt(ok.as_deref(), out);
            encode_opt(err.as_deref(), out);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    //! One test per key input: each must change the key on its own.
    use super::*;

    fn func() -> FuncType {
        FuncType {
            params: vec![("name".into(), Type::String)],
            result: Some(Type::String),
        }
    }

    fn key_with<'a>(edit: impl FnOnce(&mut KeyInputs<'a>)) -> Digest {
        let f: &'a FuncType = Box::leak(Box::new(func()));
        let mut k = KeyInputs {
            closure: Digest::of(b"component"),
            export: "greet",
            func: f,
            args: b"args",
            sandbox: Digest::of(b"sandbox"),
        };
        edit(&mut k);
        call_key(&k)
    }

    #[test]
    fn same_inputs_same_key() {
        assert_eq!(key_with(|_| {}), key_with(|_| {}));
    }

    #[test]
    fn component_changes_key() {
        assert_ne!(
            key_with(|_| {}),
            key_with(|k| k.closure = Digest::of(b"other"))
        );
    }

    #[test]
    fn export_changes_key() {
        assert_ne!(key_with(|_| {}), key_with(|k| k.export = "shout"));
    }

    #[test]
    fn function_type_changes_key() {
        let mut g = func();
        g.result = Some(Type::List(Box::new(Type::U8)));
        assert_ne!(
            key_with(|_| {}),
            key_with(|k| k.func = Box::leak(Box::new(g)))
        );
    }

    #[test]
    fn args_change_key() {
        assert_ne!(key_with(|_| {}), key_with(|k| k.args = b"argz"));
    }

    #[test]
    fn sandbox_changes_key() {
        assert_ne!(
            key_with(|_| {}),
            key_with(|k| k.sandbox = Digest::of(b"granted"))
        );
    }

    #[test]
    fn fields_do_not_run_together() {
        // "ab" + "c" must not hash like "a" + "bc".
        let a = key_with(|k| {
            k.export = "ab";
            k.args = b"c";
        });
        let b = key_with(|k| {
            k.export = "a";
            k.args = b"bc";
        });
        assert_ne!(a, b);
    }

    #[test]
    fn closure_depends_on_children_not_their_order() {
        let c = Digest::of(b"flow");
        let x = ("a:b/x".to_string(), Digest::of(b"x"));
        let y = ("a:b/y".to_string(), Digest::of(b"y"));
        assert_eq!(
            closure(c, false, &[x.clone(), y.clone()]),
            closure(c, false, &[y.clone(), x.clone()])
        );
        assert_ne!(
            closure(c, false, std::slice::from_ref(&x)),
            closure(c, false, &[x.clone(), y])
        );
        assert_ne!(closure(c, false, &[]), c);
        assert_ne!(
            closure(c, false, &[]),
            closure(c, true, &[]),
            "impurity changes the closure"
        );
        assert_ne!(
            closure(c, false, &[x]),
            closure(c, false, &[("a:b/x".into(), Digest::of(b"x2"))])
        );
    }

    #[test]
    fn known_key_is_stable() {
        // Pins the derivation: if this changes, bump KEY_VERSION.
        let k = key_with(|_| {});
        assert_eq!(k.to_hex(), KNOWN);
    }

    const KNOWN: &str = "d2af2fd739caf03cb0abd7430d0a8da2193e84ce9298fa598573b315b31210e7";
}
