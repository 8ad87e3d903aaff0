//! SIGPIPE: writing to a socket whose peer reset the connection raises it, and its default
//! action ends the process. Rust programs ignore it, but wsbroker lives inside C, C++ and
//! Python hosts that may not, and it must never kill its host. Every socket write of wsbroker
//! (plain, TLS, vectored, relay links) runs on the server's runtime threads, so those threads
//! block the signal: the write fails with EPIPE instead, which the connection handles. The
//! host's own signal handling is left alone.

/// Blocks SIGPIPE for the calling thread (each runtime thread calls it when it starts).
pub(crate) fn block_sigpipe_on_this_thread() {
    #[cfg(unix)]
    // SAFETY: sigemptyset/sigaddset initialise a local set; pthread_sigmask only changes the
    // calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

#[cfg(all(test, unix))]
mod tests {
    /// A write to a socket the peer reset raises SIGPIPE on a thread that does not block it;
    /// on a thread that does, it is only EPIPE. (Checked on a fresh thread with the default
    /// action in place would end the test process; instead the mask itself is checked.)
    #[test]
    fn the_calling_thread_blocks_sigpipe() {
        std::thread::spawn(|| {
            super::block_sigpipe_on_this_thread();
            // SAFETY: reads the calling thread's mask into a local set.
            let blocked = unsafe {
                let mut current: libc::sigset_t = std::mem::zeroed();
                libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut current);
                libc::sigismember(&current, libc::SIGPIPE)
            };
            assert_eq!(blocked, 1);
        })
        .join()
        .unwrap();
    }
}
