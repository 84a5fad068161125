//! Explicit huge pages, for real: the test reserves a few (vm.nr_hugepages,
//! a system setting) and puts the old value back when it ends, even by a
//! panic. One test in its own binary, so nothing runs beside it.

mod common;

use sprint_alloc::{Arena, ArenaConfig};

const NR: &str = "/proc/sys/vm/nr_hugepages";

struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(NR, &self.0) {
            eprintln!("could not restore {NR} to {}: {e}", self.0.trim());
        }
    }
}

fn meminfo(key: &str) -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn reserved_huge_pages_back_the_preallocation() {
    let Ok(old) = std::fs::read_to_string(NR) else {
        common::skip("hugepages", format!("no {NR}"));
        return;
    };
    let old_n: usize = old.trim().parse().unwrap();
    if let Err(e) = std::fs::write(NR, format!("{}\n", old_n + 8)) {
        common::skip("root", format!("cannot write {NR} ({e})"));
        return;
    }
    let _restore = Restore(old);
    let free = meminfo("HugePages_Free:");
    if free < 4 {
        common::skip(
            "hugepages",
            format!("the kernel found only {free} free huge pages"),
        );
        return;
    }
    let arena = Arena::new(ArenaConfig {
        ceiling: 64 << 20,
        commit: 8 << 20,
        prefault: true,
        lock: false,
        huge_pages: true,
        numa_node: None,
        strict: true,
    })
    .unwrap();
    assert_eq!(arena.stats().huge_page_bytes, 8 << 20);
    assert!(arena.notes().is_empty(), "{:?}", arena.notes());
    // Prefaulted: four 2 MiB pages are in use now.
    assert_eq!(meminfo("HugePages_Free:"), free - 4);
    // Growth past the preallocation uses ordinary pages.
    let p = arena.alloc(12 << 20, 4096).unwrap();
    // SAFETY: 12 MiB of committed arena memory, ours.
    unsafe { std::ptr::write_bytes(p.as_ptr(), 1, 12 << 20) };
    drop(arena);
    assert_eq!(meminfo("HugePages_Free:"), free, "given back on drop");
}
