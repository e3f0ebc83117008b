//! Reading what a trap says beyond its kind.

/// Whether `e`, an out-of-bounds trap, touched an address just around 4 GiB
/// (an i32 pointer just below 2^32, plus an access's static offset of up to
/// 64 KiB): a shadow stack (the stack a task compiled from Rust or C keeps
/// at the bottom of its linear memory, below its data) that ran past
/// address 0 and wrapped. Wasm cannot tell this from any other bad access;
/// the address can.
pub(super) fn shadow_stack_wrapped(e: &wasmtime::Error) -> bool {
    // wasmtime adds "memory fault at wasm address 0x… in linear memory of
    // size 0x…" to a trap caught by the guard pages.
    let text = format!("{e:?}");
    let Some(at) = text.split("memory fault at wasm address 0x").nth(1) else {
        return false;
    };
    let hex: String = at.chars().take_while(char::is_ascii_hexdigit).collect();
    u64::from_str_radix(&hex, 16).is_ok_and(|addr| (0xFFF0_0000..0x1_0001_0000).contains(&addr))
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
        // Seen from the hostile guest's recursion: the pointer wrapped, then
        // the access's offset.
        assert!(shadow_stack_wrapped(&at("0x100000060")));
        assert!(!shadow_stack_wrapped(&at("0x120000")));
        assert!(!shadow_stack_wrapped(&wasmtime::Error::msg("other")));
    }
}
