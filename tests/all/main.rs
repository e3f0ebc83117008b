//! cairn's integration tests: one binary, one module per feature.
//!
//! `cli` drives the real `cairn` binary on the components built from
//! `examples/` (built once per test run, for wasm32-wasip2). `library` uses
//! the `cairn-host` library on tiny components made from WAT, so it needs no wasm
//! target. `javascript` builds the JS example with `guest-sdk/js`'s npm tools
//! (`npm ci --prefix guest-sdk/js`).

mod support;

mod cli;
mod crash;
mod crates;
mod damage;
mod fanout;
mod flows;
mod habits;
mod hostile;
mod javascript;
mod layers;
mod library;
mod pipeline;
mod polyglot;
mod python;
mod remote;
mod steer;
