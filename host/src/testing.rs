//! Helpers for tests: tiny components from WIT and WAT. The integration
//! tests include this file too (`tests/all/support.rs`).
//!
//! Layer: bottom (data); imports nothing from the crate.

/// A component of the single world of `wit`, implemented by core module `wat`.
pub(crate) fn component(wit: &str, wat: &str) -> Vec<u8> {
    component_of(wit, None, wat)
}

/// A component of world `world` of `wit` (its only one if `None`),
/// implemented by core module `wat`.
pub(crate) fn component_of(wit: &str, world: Option<&str>, wat: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_str("test.wit", wit).unwrap();
    let world = resolve.select_world(&[pkg], world).unwrap();
    encode(&resolve, world, wat::parse_str(wat).unwrap())
}

/// A component of world `world` of `wit` whose functions do nothing useful
/// (wit-component's dummy module): for tests that read a component's
/// interfaces, not run it. `wit` may use `cairn:task`.
pub(crate) fn component_exporting(wit: &str, world: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    // `wit` may use cairn's own package (`cairn:task/blobs`).
    resolve
        .push_str("task.wit", include_str!("../wit/task.wit"))
        .unwrap();
    let pkg = resolve.push_str("test.wit", wit).unwrap();
    let world = resolve.select_world(&[pkg], Some(world)).unwrap();
    let mangling = wit_parser::ManglingAndAbi::Legacy(wit_parser::LiftLowerAbi::Sync);
    encode(
        &resolve,
        world,
        wit_component::dummy_module(&resolve, world, mangling),
    )
}

/// Core `module` implementing `world`, as a component.
fn encode(
    resolve: &wit_parser::Resolve,
    world: wit_parser::WorldId,
    mut module: Vec<u8>,
) -> Vec<u8> {
    wit_component::embed_component_metadata(
        &mut module,
        resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

/// `add(a, b) -> u32` and `slow(n) -> u32` (counts down from n).
pub(crate) fn math() -> Vec<u8> {
    component(
        "package test:math;\nworld math {\n  export add: func(a: u32, b: u32) -> u32;\n  export slow: func(n: u32) -> u32;\n}\n",
        r#"(module
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "slow") (param $n i32) (result i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $n)))"#,
    )
}
