//! Exit codes of the `snow-epmd` command (README "Client commands").

/// Exit code: not found or refused.
pub const NOT_FOUND: i32 = 1;
/// Exit code: usage or configuration error.
pub const CONFIG: i32 = 2;
/// Exit code: the daemon cannot be reached.
pub const UNREACHABLE: i32 = 3;
