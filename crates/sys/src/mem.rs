//! A long-lived process's memory after its start (the supervisor, issue 16).
//!
//! Measured on a 10-service stack: the supervisor's VmRSS was mostly the
//! rstack binary's text, faulted in 64 KiB at a time (the kernel maps the
//! neighbours of every touched page that is in the page cache) while it
//! parsed and validated the project, set up networks and started
//! containers — code it never runs again — and its private memory held
//! freed heap and one malloc arena per thread. So:
//! - [`limit_arenas`] (before threads start): one glibc arena, which the
//!   runner/prober threads share instead of one each;
//! - [`shed_startup_pages`] (once started): `malloc_trim` hands freed heap
//!   back, and the clean file-backed mappings of the executable and its
//!   libraries drop their page table entries (`MADV_DONTNEED`: the pages
//!   stay in the page cache; what the steady state runs faults back in).
//!   Mappings holding private pages (relocated data) are left alone, so
//!   nothing is lost. The main thread's stack below the caller's frame
//!   (dead frames of the start, which went deep) is handed back too;
//! - [`trim_heap`] (when idle): the free pages of the heap, again.

/// Caps glibc's malloc arenas at 1 (call before spawning threads): the
/// supervisor's threads mostly sleep, so they hardly ever contend for it,
/// and each extra arena kept ~200 KB of its own pages.
pub fn limit_arenas() {
    // SAFETY: mallopt with an integer parameter; glibc only.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
}

/// Returns the heap's free pages to the kernel (`malloc_trim`: also the
/// free pages between live chunks, which glibc otherwise keeps).
pub fn trim_heap() {
    // SAFETY: malloc_trim(0) only releases free memory.
    unsafe { libc::malloc_trim(0) };
}

/// Returns freed heap to the kernel and unmaps the clean file pages of the
/// executable and its libraries from this process (they remain cached).
pub fn shed_startup_pages() {
    trim_heap();
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    shed_dead_stack(&smaps);
    for m in clean_file_mappings(&smaps) {
        // SAFETY: a whole file mapping (the executable, a library) with no
        // private pages: dropping its page table entries loses nothing (the
        // next access faults the same file page back in).
        unsafe { libc::madvise(m.start as *mut libc::c_void, m.len, libc::MADV_DONTNEED) };
    }
}

/// The address range `start-end` (hex) that opens an smaps mapping line.
fn range(field: &str) -> Option<(usize, usize)> {
    let (a, b) = field.split_once('-')?;
    Some((
        usize::from_str_radix(a, 16).ok()?,
        usize::from_str_radix(b, 16).ok()?,
    ))
}

/// Drops the main thread's stack pages more than 32 KiB below the current
/// frame (called on the main thread; no frame lives there any more, and
/// this call and the `madvise` it makes need far less than the margin).
fn shed_dead_stack(smaps: &str) {
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    let Some(stack) = smaps.lines().find(|l| l.ends_with("[stack]")) else {
        return;
    };
    let Some((start, end)) = stack.split_whitespace().next().and_then(range) else {
        return;
    };
    if !(start..end).contains(&sp) {
        return; // not the main thread
    }
    let keep_from = (sp - 32 * 1024) & !0xfff;
    if keep_from > start {
        // SAFETY: pages of our own stack far below the live frames; they
        // are zero-filled again if the stack ever grows back there.
        unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                keep_from - start,
                libc::MADV_DONTNEED,
            )
        };
    }
}

/// A mapping's address range.
#[derive(Debug, PartialEq, Eq)]
struct Range {
    start: usize,
    len: usize,
}

/// The file mappings in `/proc/self/smaps` text that are read-only or
/// executable (never writable) and hold no anonymous (private) pages: the
/// executable's and the libraries' code and constants (libc and libm alone
/// were ~2 MB of the supervisor's RSS, mapped 64 KiB around each fault).
fn clean_file_mappings(smaps: &str) -> Vec<Range> {
    let mut out = Vec::new();
    let mut current: Option<Range> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((start, end)) = range(first) {
            let perms = fields.next().unwrap_or("");
            let name = fields.nth(3).unwrap_or("");
            current = (name.starts_with('/') && !perms.contains('w')).then_some(Range {
                start,
                len: end - start,
            });
        } else if first == "Anonymous:"
            && let Some(r) = current.take()
            && fields.next() == Some("0")
        {
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d000000000-55d000100000 r--p 00000000 08:01 42 /usr/bin/rstack
Rss:                1024 kB
Anonymous:             0 kB
55d000100000-55d000900000 r-xp 00100000 08:01 42 /usr/bin/rstack
Rss:                8000 kB
Anonymous:             0 kB
55d000900000-55d000980000 r--p 00900000 08:01 42 /usr/bin/rstack
Rss:                 512 kB
Anonymous:           512 kB
55d000980000-55d000990000 rw-p 00980000 08:01 42 /usr/bin/rstack
Anonymous:             8 kB
7f0000000000-7f0000100000 r-xp 00000000 08:01 7 /usr/lib/libc.so.6
Anonymous:             0 kB
";

    #[test]
    fn only_clean_read_only_file_mappings() {
        let got = clean_file_mappings(SMAPS);
        assert_eq!(
            got,
            vec![
                Range {
                    start: 0x55d0_0000_0000,
                    len: 0x10_0000
                },
                Range {
                    start: 0x55d0_0010_0000,
                    len: 0x80_0000
                },
                Range {
                    start: 0x7f00_0000_0000,
                    len: 0x10_0000
                },
            ]
        );
    }

    #[test]
    fn shedding_keeps_the_process_working() {
        limit_arenas();
        let v: Vec<u64> = (0..100_000).collect();
        drop(v);
        shed_startup_pages();
        // code and data still work after the page table entries went
        let s: u64 = (0..1000u64).sum();
        assert_eq!(s, 499_500);
        assert_eq!(format!("{}", 42), "42");
    }
}
