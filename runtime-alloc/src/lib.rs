//! Sprint's per-worker arenas, task slabs and memory budget: no content yet; the memory issue fills this crate, and until then tasks use the global allocator.
