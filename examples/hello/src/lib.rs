//! The smallest cairn task: `greet(name, excited) -> string`.

wit_bindgen::generate!({ path: "wit", world: "example:hello/hello" });

struct Hello;

impl Guest for Hello {
    fn greet(name: String, excited: bool) -> String {
        if excited {
            format!("Hello, {}!", name.to_uppercase())
        } else {
            format!("Hello, {name}.")
        }
    }
}

export!(Hello);
