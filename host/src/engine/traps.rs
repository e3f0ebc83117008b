//! Reading what a trap says beyond its kind.

/// Whether `e`, an out-of-bounds trap, touched an address just below 4 GiB:
/// a shadow stack (the stack a task compiled from Rust or C keeps in its
/// linear memory, below its data) that ran past address 0 and wrapped.
/// Wasm cannot tell this from any other bad access; the address can.
pub(super) fn shadow_stack_wrapped(e: &wasmtime::Error) -> bool {
    // wasmtime adds "memory fault at wasm address 0x… in linear memory of
    // size 0x…" to a trap caught by the guard pages.
    let text = format!("{e:?}");
    let Some(at) = text.split("memory fault at wasm address 0x").nth(1) else {
        return false;
    };
    let hex: String = at.chars().take_while(char::is_ascii_hexdigit).collect();
    u64::from_str_radix(&hex, 16).is_ok_and(|addr| (0xFFF0_0000..=0xFFFF_FFFF).contains(&addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_just_below_4_gib_is_a_wrapped_stack() {
        let at = |addr: &str| {
            wasmtime::Error::msg(format!(
                "memory fault at wasm address {addr} in linear memory of size 0x110000"
            ))
        };
        assert!(shadow_stack_wrapped(&at("0xfffffff0")));
        assert!(!shadow_stack_wrapped(&at("0x120000")));
        assert!(!shadow_stack_wrapped(&wasmtime::Error::msg("other")));
    }
}
