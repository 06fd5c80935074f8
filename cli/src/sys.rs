//! The binary's only unsafe code: malloc settings for small devices.

/// One malloc arena for the whole process. glibc gives each thread that allocates its own
/// arena (up to 8 per core), each keeping its own free memory: with a pull's unpacking threads
/// that was ~0.5 MB more at the peak. barge's threads allocate little while they work (their
/// buffers are made once), so sharing one arena costs no measurable time.
/// (glibc only: musl's allocator has no per-thread arenas.)
pub fn tune_malloc() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters; it is called before any other thread
    // exists and takes no pointers.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
