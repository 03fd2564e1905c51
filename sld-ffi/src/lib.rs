//! C ABI for sld-core (see issue: sld-ffi). Placeholder until the C ABI lands.
