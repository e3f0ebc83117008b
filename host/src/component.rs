//! Reading a component's interface without compiling it.
//!
//! [`describe`] checks that bytes are a valid component and reads its exports
//! and imports from its WIT. The result is kept in the cache by component
//! hash, so this runs once per component, ever.
//!
//! Layer: bottom (data); imports only other bottom-layer modules.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use wit_parser::decoding::DecodedWasm;
use wit_parser::{Handle, Resolve, TypeDefKind, TypeId, TypeOwner, WorldItem, WorldKey};

use crate::error::{Error, ErrorKind, Result};
use crate::types::{FuncType, Type};

/// One exported function.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// The exporting interface (`example:words/words@0.1.0`), or `None` for a
    /// function exported by the world itself.
    pub interface: Option<String>,
    /// The function's name.
    pub func: String,
    /// Its signature, or why cairn cannot call it (say, a parameter of a
    /// resource type other than `blob`).
    pub ty: std::result::Result<FuncType, String>,
}

/// Functions a language runtime exports from every component it builds,
/// which the task's author never wrote and users never call: (interface,
/// function, its parameters' names, the runtime).
const RUNTIME_INTERNALS: &[(&str, &str, &[&str], &str)] = &[
    // componentize-py's build step calls it once, to set up the
    // interpreter before taking its snapshot.
    (
        "exports",
        "init",
        &["app-name", "symbols", "stub-wasi"],
        "componentize-py",
    ),
];

impl Export {
    /// The language runtime whose internal function this is (such as
    /// componentize-py's `exports#init`), or `None` for the task's own
    /// functions. Lists of exports leave internal ones out; they can still
    /// be called by their full path.
    pub fn runtime_internal(&self) -> Option<&'static str> {
        let params: Option<Vec<&str>> = self
            .ty
            .as_ref()
            .ok()
            .map(|t| t.params.iter().map(|(n, _)| n.as_str()).collect());
        RUNTIME_INTERNALS
            .iter()
            .find(|(iface, func, names, _)| {
                self.interface.as_deref() == Some(*iface)
                    && self.func == *func
                    && params.as_deref() == Some(*names)
            })
            .map(|(.., runtime)| *runtime)
    }

    /// The full export path: `func`, or `interface#func`.
    pub fn path(&self) -> String {
        match &self.interface {
            Some(i) => format!("{i}#{}", self.func),
            None => self.func.clone(),
        }
    }

    /// Whether `query` names this export: the full path, the bare function
    /// name, or `iface#func` / `iface.func` with the interface's short name
    /// (`words#top` for `example:words/words@0.1.0#top`).
    pub fn matches(&self, query: &str) -> bool {
        if query == self.func || query == self.path() {
            return true;
        }
        let Some(iface) = &self.interface else {
            return false;
        };
        let short = iface.rsplit('/').next().unwrap_or(iface);
        let short = short.split('@').next().unwrap_or(short);
        [iface.as_str(), short].iter().any(|i| {
            query == format!("{i}.{}", self.func) || query == format!("{short}#{}", self.func)
        })
    }
}

/// The version of what [`describe`] reads from a component, and of how it
/// is stored ([`ComponentInfo::encode`]); a cached description of another
/// version is read again. Bump it whenever [`ComponentInfo`], [`Export`],
/// [`FuncType`] or [`Type`] change shape: postcard names no fields, so an
/// old entry could otherwise decode into the wrong types.
pub(crate) const INFO_VERSION: u32 = 3;

/// What cairn knows of a component's interface.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComponentInfo {
    /// [`INFO_VERSION`] when this description was made.
    #[serde(default)]
    pub(crate) version: u32,
    /// Exported functions, in the component's order.
    pub exports: Vec<Export>,
    /// Names of the imported interfaces and functions that something must
    /// provide (interfaces imported only for their types are left out).
    pub imports: Vec<String>,
}

/// What binding reads of a stored interface: its version, the imports and
/// the interfaces exported (names one a line: one string each to decode),
/// and the length of the stored exports after it.
type Head = (u32, String, String, u32);

impl ComponentInfo {
    /// The stored form: postcard of what binding needs ([`Head`], the
    /// version first), then postcard of the exports. A run binds every task
    /// of a manifest but calls one, so only that one's signatures are
    /// decoded (see [`Interface`]).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let exports = postcard::to_allocvec(&self.exports).expect("exports always encode");
        let head: Head = (
            self.version,
            self.imports.join("\n"),
            exported(&self.exports).join("\n"),
            exports.len() as u32,
        );
        let mut out = postcard::to_allocvec(&head).expect("names always encode");
        out.extend(exports);
        out
    }
}

/// The interfaces `exports` come from, each once, in order.
fn exported(exports: &[Export]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in exports.iter().filter_map(|e| e.interface.as_ref()) {
        if !out.contains(i) {
            out.push(i.clone());
        }
    }
    out
}

/// A component's interface as a [`crate::Task`] holds it: the imports and
/// the exported interfaces at once (binding needs them), the signatures of
/// its functions decoded from the stored form on first use.
#[derive(Debug)]
pub(crate) struct Interface {
    /// The names of [`ComponentInfo::imports`], one a line.
    import_lines: String,
    /// As [`ComponentInfo::imports`], once asked for.
    imports: OnceLock<Vec<String>>,
    /// The interfaces it exports, each once, one a line.
    exported: String,
    /// As [`ComponentInfo::exports`], once decoded.
    exports: OnceLock<Vec<Export>>,
    /// Their stored form, until then.
    stored: Box<[u8]>,
}

impl Interface {
    /// The interface `bytes` (from [`ComponentInfo::encode`]) store, if
    /// they are one of this [`INFO_VERSION`] and of the right length.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Interface> {
        match postcard::take_from_bytes::<Head>(bytes) {
            Ok(((INFO_VERSION, imports, exported, len), rest)) if rest.len() == len as usize => {
                Some(Interface {
                    import_lines: imports,
                    imports: OnceLock::new(),
                    exported,
                    exports: OnceLock::new(),
                    stored: rest.into(),
                })
            }
            _ => None,
        }
    }

    /// The exported functions, in the component's order.
    pub(crate) fn exports(&self) -> &[Export] {
        self.exports.get_or_init(|| {
            match postcard::take_from_bytes::<Vec<Export>>(&self.stored) {
                Ok((exports, [])) => exports,
                // Of the right version and length, yet not decodable: the
                // index is damaged. No export then, so no call of it runs
                // (its code is keyed by hash: nothing wrong is stored).
                _ => {
                    tracing::error!(
                        "the cache index holds a damaged component interface: the \
                         component is taken to export nothing (use another --cache-dir)"
                    );
                    Vec::new()
                }
            }
        })
    }

    /// Whether it exports interface `name`.
    pub(crate) fn exports_interface(&self, name: &str) -> bool {
        self.exported.lines().any(|i| i == name)
    }

    /// The names of the imports, without making a list of them.
    pub(crate) fn import_names(&self) -> std::str::Lines<'_> {
        self.import_lines.lines()
    }

    /// As [`ComponentInfo::imports`].
    pub(crate) fn imports(&self) -> &[String] {
        self.imports
            .get_or_init(|| self.import_names().map(String::from).collect())
    }
}

impl From<ComponentInfo> for Interface {
    fn from(info: ComponentInfo) -> Interface {
        Interface {
            exported: exported(&info.exports).join("\n"),
            import_lines: info.imports.join("\n"),
            imports: OnceLock::from(info.imports),
            exports: OnceLock::from(info.exports),
            stored: Box::default(),
        }
    }
}

/// Validates `bytes` as a component and reads its interface. `what` names the
/// component in messages (usually its path).
///
/// # Errors
/// [`ErrorKind::NotAComponent`] for bytes that are not WebAssembly or are a
/// core module; [`ErrorKind::InvalidComponent`] for a malformed component.
pub fn describe(bytes: &[u8], what: &str) -> Result<ComponentInfo> {
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(Error::new(
            ErrorKind::NotAComponent,
            format!(
                "{what} is a core WebAssembly module, not a component; build it with \
                 `--target wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
            ),
        ));
    }
    if !wasmparser::Parser::is_component(bytes) {
        return Err(Error::new(
            ErrorKind::NotAComponent,
            format!("{what} is not a WebAssembly component (no `\\0asm` header); give a `.wasm` component"),
        ));
    }
    let invalid = |e: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::InvalidComponent,
            format!("{what} is not a valid component: {e}; rebuild it, or check it with `wasm-tools validate`"),
        )
    };
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(bytes)
        .map_err(|e| invalid(&e))?;
    let (resolve, world) = match wit_parser::decoding::decode(bytes).map_err(|e| invalid(&e))? {
        DecodedWasm::Component(r, w) => (r, w),
        DecodedWasm::WitPackage(..) => {
            return Err(Error::new(
                ErrorKind::NotAComponent,
                format!("{what} is a WIT package, not a runnable component"),
            ))
        }
    };
    let world = &resolve.worlds[world];
    let mut exports = Vec::new();
    for (key, item) in &world.exports {
        match item {
            WorldItem::Function(f) => exports.push(export(&resolve, None, f)),
            WorldItem::Interface { id, .. } => {
                let name = resolve.name_world_key(key);
                for f in resolve.interfaces[*id].functions.values() {
                    exports.push(export(&resolve, Some(name.clone()), f));
                }
            }
            WorldItem::Type { .. } => {}
        }
    }
    // An interface imported only for its types (records, enums) needs no
    // provider: it has nothing to call.
    let imports = world
        .imports
        .iter()
        .filter(|(_, item)| match item {
            WorldItem::Type { .. } => false,
            WorldItem::Function(_) => true,
            WorldItem::Interface { id, .. } => {
                let iface = &resolve.interfaces[*id];
                !iface.functions.is_empty()
                    || iface
                        .types
                        .values()
                        .any(|t| matches!(resolve.types[*t].kind, TypeDefKind::Resource))
            }
        })
        .map(|(key, _)| match key {
            WorldKey::Name(n) => n.clone(),
            WorldKey::Interface(_) => resolve.name_world_key(key),
        })
        .collect();
    Ok(ComponentInfo {
        version: INFO_VERSION,
        exports,
        imports,
    })
}

fn export(resolve: &Resolve, interface: Option<String>, f: &wit_parser::Function) -> Export {
    let ty = match f.kind {
        // An `async` export is called on a fiber; its caller waits for it
        // like for any other.
        wit_parser::FunctionKind::Freestanding | wit_parser::FunctionKind::AsyncFreestanding => {
            func_type(resolve, f)
        }
        _ => Err("only functions (not resource methods) can be called".to_string()),
    };
    Export {
        interface,
        func: f.name.clone(),
        ty,
    }
}

fn func_type(resolve: &Resolve, f: &wit_parser::Function) -> std::result::Result<FuncType, String> {
    let params = f
        .params
        .iter()
        .map(|p| Ok((p.name.clone(), convert(resolve, &p.ty)?)))
        .collect::<std::result::Result<_, String>>()?;
    let result = f.result.as_ref().map(|t| convert(resolve, t)).transpose()?;
    Ok(FuncType { params, result })
}

fn convert(resolve: &Resolve, ty: &wit_parser::Type) -> std::result::Result<Type, String> {
    use wit_parser::Type as W;
    Ok(match ty {
        W::Bool => Type::Bool,
        W::U8 => Type::U8,
        W::U16 => Type::U16,
        W::U32 => Type::U32,
        W::U64 => Type::U64,
        W::S8 => Type::S8,
        W::S16 => Type::S16,
        W::S32 => Type::S32,
        W::S64 => Type::S64,
        W::F32 => Type::F32,
        W::F64 => Type::F64,
        W::Char => Type::Char,
        W::String => Type::String,
        W::ErrorContext => return Err("`error-context` values cannot be passed".into()),
        W::Id(id) => convert_def(resolve, *id)?,
    })
}

fn convert_opt(
    resolve: &Resolve,
    ty: Option<&wit_parser::Type>,
) -> std::result::Result<Option<Box<Type>>, String> {
    ty.map(|t| convert(resolve, t).map(Box::new)).transpose()
}

fn convert_def(resolve: &Resolve, id: TypeId) -> std::result::Result<Type, String> {
    let def = &resolve.types[id];
    Ok(match &def.kind {
        TypeDefKind::Type(t) => convert(resolve, t)?,
        TypeDefKind::Record(r) => Type::Record(
            r.fields
                .iter()
                .map(|f| Ok((f.name.clone(), convert(resolve, &f.ty)?)))
                .collect::<std::result::Result<_, String>>()?,
        ),
        TypeDefKind::Tuple(t) => Type::Tuple(
            t.types
                .iter()
                .map(|t| convert(resolve, t))
                .collect::<Result<_, _>>()?,
        ),
        TypeDefKind::Variant(v) => Type::Variant(
            v.cases
                .iter()
                .map(|c| {
                    Ok((
                        c.name.clone(),
                        c.ty.as_ref().map(|t| convert(resolve, t)).transpose()?,
                    ))
                })
                .collect::<std::result::Result<_, String>>()?,
        ),
        TypeDefKind::Enum(e) => Type::Enum(e.cases.iter().map(|c| c.name.clone()).collect()),
        TypeDefKind::Flags(f) => Type::Flags(f.flags.iter().map(|f| f.name.clone()).collect()),
        TypeDefKind::Option(t) => Type::Option(Box::new(convert(resolve, t)?)),
        TypeDefKind::Result(r) => Type::Result {
            ok: convert_opt(resolve, r.ok.as_ref())?,
            err: convert_opt(resolve, r.err.as_ref())?,
        },
        TypeDefKind::List(t) => Type::List(Box::new(convert(resolve, t)?)),
        TypeDefKind::Handle(Handle::Own(r)) if is_blob(resolve, *r) => Type::Blob { owned: true },
        TypeDefKind::Handle(Handle::Borrow(r)) if is_blob(resolve, *r) => {
            Type::Blob { owned: false }
        }
        TypeDefKind::Handle(_) | TypeDefKind::Resource => {
            return Err(format!(
                "resource `{}` cannot cross a cached call (only `cairn:task/blobs.blob` can)",
                def.name.as_deref().unwrap_or("?")
            ))
        }
        other => return Err(format!("`{}` values cannot be passed yet", other.as_str())),
    })
}

/// Whether `id` (after aliases) is the resource `blob` of `cairn:task/blobs`.
fn is_blob(resolve: &Resolve, mut id: TypeId) -> bool {
    while let TypeDefKind::Type(wit_parser::Type::Id(next)) = resolve.types[id].kind {
        id = next;
    }
    let def = &resolve.types[id];
    let TypeOwner::Interface(iface) = def.owner else {
        return false;
    };
    let iface = &resolve.interfaces[iface];
    let pkg = iface.package.map(|p| &resolve.packages[p].name);
    def.name.as_deref() == Some("blob")
        && iface.name.as_deref() == Some("blobs")
        && pkg.is_some_and(|p| p.namespace == "cairn" && p.name == "task")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(iface: Option<&str>, func: &str) -> Export {
        Export {
            interface: iface.map(str::to_string),
            func: func.into(),
            ty: Err(String::new()),
        }
    }

    #[test]
    fn export_names_match_full_short_and_bare() {
        let e = export(Some("example:words/words@0.1.0"), "top");
        assert_eq!(e.path(), "example:words/words@0.1.0#top");
        for q in [
            "top",
            "words#top",
            "words.top",
            "example:words/words@0.1.0#top",
        ] {
            assert!(e.matches(q), "{q}");
        }
        assert!(!e.matches("tops"));
        assert!(export(None, "greet").matches("greet"));
    }

    /// Every kind of type, once.
    fn all_types() -> ComponentInfo {
        use Type as T;
        let params = vec![
            ("a".into(), T::List(Box::new(T::U8))),
            ("b".into(), T::Record(vec![("x".into(), T::S64)])),
            ("c".into(), T::Tuple(vec![T::F32, T::F64, T::Char])),
            (
                "d".into(),
                T::Variant(vec![("v".into(), Some(T::Bool)), ("w".into(), None)]),
            ),
            ("e".into(), T::Enum(vec!["p".into()])),
            ("f".into(), T::Option(Box::new(T::String))),
            ("g".into(), T::Flags(vec!["q".into()])),
            ("h".into(), T::Blob { owned: true }),
            (
                "i".into(),
                T::Tuple(vec![T::S8, T::S16, T::S32, T::U16, T::U32, T::U64]),
            ),
        ];
        let result = Some(T::Result {
            ok: Some(Box::new(T::Blob { owned: false })),
            err: None,
        });
        ComponentInfo {
            version: INFO_VERSION,
            exports: vec![
                Export {
                    interface: Some("x:y/z@0.1.0".into()),
                    func: "run".into(),
                    ty: Ok(FuncType { params, result }),
                },
                Export {
                    interface: None,
                    func: "m".into(),
                    ty: Err("why".into()),
                },
            ],
            imports: vec!["x:y/w".into()],
        }
    }

    #[test]
    fn stored_interfaces_decode_as_they_were_and_nothing_else_does() {
        let info = all_types();
        let bytes = info.encode();
        let back = Interface::decode(&bytes).unwrap();
        assert_eq!(back.imports(), info.imports);
        assert!(back.import_names().eq(info.imports.iter()));
        assert!(back.exports_interface("x:y/z@0.1.0"));
        assert!(!back.exports_interface("x:y/w"));
        assert_eq!(back.exports(), info.exports);
        // Cut, extended, or of another version: described again.
        assert!(Interface::decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(Interface::decode(&[&bytes[..], &[0]].concat()).is_none());
        let old = ComponentInfo {
            version: INFO_VERSION - 1,
            ..info
        };
        assert!(Interface::decode(&old.encode()).is_none());
    }

    #[test]
    fn damaged_exports_decode_to_none_rather_than_to_wrong_ones() {
        let mut bytes = all_types().encode();
        let last = bytes.len() - 1;
        bytes[last - 12..=last].fill(0xff);
        let damaged = Interface::decode(&bytes).unwrap();
        assert!(damaged.exports().is_empty());
    }

    #[test]
    fn the_stored_form_of_interfaces_is_pinned() {
        // Caches keep interfaces in this form across builds. If this fails,
        // the shape of an interface changed: bump INFO_VERSION (so caches
        // describe their components again), then update the bytes.
        let hex: String = all_types()
            .encode()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "0305783a792f770b783a792f7a40302e312e305d02010b783a792f7a40302e312e300372756e000901610d0501620e0101780401630f03090a0b01641002017601000177000165110101700166120c0167140101710168150101690f0601020306070801130115000000016d0103776879"
        );
    }

    #[test]
    fn garbage_and_core_modules_are_named() {
        let err = describe(b"hello", "x.wasm").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotAComponent);
        let core = wat::parse_str("(module)").unwrap();
        let err = describe(&core, "m.wasm").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotAComponent);
        assert!(err.to_string().contains("core WebAssembly module"), "{err}");
        let mut truncated = wat::parse_str("(component (core module))").unwrap();
        truncated.truncate(truncated.len() - 2);
        assert_eq!(
            describe(&truncated, "t.wasm").unwrap_err().kind(),
            ErrorKind::InvalidComponent
        );
    }
}
