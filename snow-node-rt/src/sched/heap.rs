//! The C heap's settings for message-sized buffers (glibc only).
//!
//! Distribution allocates and frees a buffer per large message (encoding, reassembly, decoding).
//! With glibc's defaults, freeing a 64 KiB buffer at the top of the heap returns its pages to the
//! OS once more than 128 KiB is free there, and the next message faults them in again: that
//! page-fault churn was the largest cost of 64 KiB messages between two nodes (README,
//! "Benchmarks", has the figures). BEAM avoids it with its own allocators; the runtime keeps glibc's but lets the heap hold on to what it
//! freed: it grows by [`TOP_PAD`] more than asked and gives memory back only when more than
//! [`TRIM_THRESHOLD`] is free at its top. Pages not touched are not resident, so an idle node's
//! memory does not change.
//!
//! An operator who set glibc's own variables (`MALLOC_TOP_PAD_`, `MALLOC_TRIM_THRESHOLD_`,
//! `MALLOC_MMAP_THRESHOLD_`) keeps them: the runtime then changes nothing.

/// Extra bytes the heap grows by, beyond what an allocation needs.
pub(crate) const TOP_PAD: usize = 4 << 20;
/// Free bytes at the top of the heap above which memory goes back to the OS.
pub(crate) const TRIM_THRESHOLD: usize = 32 << 20;

/// glibc's variables that set the same things; if any is set, the operator's choice stands.
const GLIBC_VARIABLES: [&str; 3] = ["MALLOC_TOP_PAD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"];

/// Applies the settings once per OS process (later calls do nothing).
pub(crate) fn tune_once() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        if let Some(var) = GLIBC_VARIABLES.iter().find(|v| std::env::var_os(v).is_some()) {
            log::debug!("heap: {var} is set; leaving glibc's malloc settings alone");
            return;
        }
        apply();
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn apply() {
    for (param, name, value) in
        [(libc::M_TOP_PAD, "M_TOP_PAD", TOP_PAD), (libc::M_TRIM_THRESHOLD, "M_TRIM_THRESHOLD", TRIM_THRESHOLD)]
    {
        let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes allocator parameters, under glibc's own arena lock; it
        // is safe to call from any thread at any time.
        let ok = unsafe { libc::mallopt(param, value) };
        if ok == 1 {
            log::debug!("heap: {name} = {value}");
        } else {
            log::warn!("heap: glibc refused {name} = {value}; large messages may cost page faults");
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() {}
