//! The module's allocator: per-size lists of freed small blocks in front of the system
//! allocator (wasi-libc's dlmalloc).
//!
//! Every request allocates and frees the same couple of dozen small blocks (header and
//! body copies, names, report entries); dlmalloc spends a hundred or more instructions
//! per malloc and free on its bins, a list pop or push costs a few. Blocks are reused
//! in LIFO order, so the memory a request touches stays the memory the last one touched
//! (an allocator that never frees was measured no faster, for want of that).
//!
//! Bounded: each class keeps at most 16 blocks up to 256 bytes and 4 up to 2 KB, 70 KB in
//! all; what is freed beyond that, and every block over 2 KB or aligned over 8, goes to
//! dlmalloc.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// Blocks up to this size come in steps of [`STEP`]...
const SMALL: usize = 256;
const STEP: usize = 16;
/// ...then in steps of [`LARGE_STEP`] up to [`LARGEST`] (a request body's copy).
const LARGE_STEP: usize = 256;
const LARGEST: usize = 2048;
const SMALL_CLASSES: usize = SMALL / STEP;
const CLASSES: usize = SMALL_CLASSES + (LARGEST - SMALL) / LARGE_STEP;
/// Blocks kept per small class, and per large class.
const KEEP_SMALL: u16 = 16;
const KEEP_LARGE: u16 = 4;
/// The alignment every block has (wasi-libc's malloc gives 8 without an aligned call).
const ALIGN: usize = 8;

struct Lists {
    /// The last freed block of each class; each free block holds the next one's address.
    head: [*mut u8; CLASSES],
    /// How many blocks each list holds.
    len: [u16; CLASSES],
}

/// The allocator (see the module docs).
pub struct SmallBlocks {
    lists: UnsafeCell<Lists>,
}

// SAFETY: a proxy-wasm module runs on one thread; nothing here is reached concurrently.
unsafe impl Sync for SmallBlocks {}

impl SmallBlocks {
    /// Empty lists.
    pub const fn new() -> SmallBlocks {
        SmallBlocks {
            lists: UnsafeCell::new(Lists {
                head: [ptr::null_mut(); CLASSES],
                len: [0; CLASSES],
            }),
        }
    }
}

/// The class of blocks serving `layout`, if it is not too large.
#[inline(always)]
fn class(layout: Layout) -> Option<usize> {
    let size = layout.size();
    if layout.align() > ALIGN || size == 0 || size > LARGEST {
        return None;
    }
    Some(if size <= SMALL {
        (size - 1) / STEP
    } else {
        SMALL_CLASSES + (size - SMALL - 1) / LARGE_STEP
    })
}

/// The size of class `c`'s blocks.
fn class_size(c: usize) -> usize {
    if c < SMALL_CLASSES {
        (c + 1) * STEP
    } else {
        SMALL + (c + 1 - SMALL_CLASSES) * LARGE_STEP
    }
}

/// The layout every block of class `c` is allocated with.
fn class_layout(c: usize) -> Layout {
    // SAFETY: the size is at most LARGEST and ALIGN a power of two.
    unsafe { Layout::from_size_align_unchecked(class_size(c), ALIGN) }
}

/// How many freed blocks class `c` keeps.
#[inline(always)]
fn keep(c: usize) -> u16 {
    if c < SMALL_CLASSES {
        KEEP_SMALL
    } else {
        KEEP_LARGE
    }
}

unsafe impl GlobalAlloc for SmallBlocks {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(c) = class(layout) else {
            return System.alloc(layout);
        };
        let lists = &mut *self.lists.get();
        if let (Some(head), Some(len)) = (lists.head.get_mut(c), lists.len.get_mut(c)) {
            let block = *head;
            if !block.is_null() {
                *head = block.cast::<*mut u8>().read();
                *len -= 1;
                return block;
            }
        }
        System.alloc(class_layout(c))
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if class(layout).is_none() {
            return System.alloc_zeroed(layout);
        }
        let block = self.alloc(layout);
        if !block.is_null() {
            ptr::write_bytes(block, 0, layout.size());
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(c) = class(layout) else {
            return System.dealloc(block, layout);
        };
        let lists = &mut *self.lists.get();
        match (lists.head.get_mut(c), lists.len.get_mut(c)) {
            (Some(head), Some(len)) if *len < keep(c) => {
                block.cast::<*mut u8>().write(*head);
                *head = block;
                *len += 1;
            }
            _ => System.dealloc(block, class_layout(c)),
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        match (class(layout), class(new)) {
            (None, None) => System.realloc(block, layout, new_size),
            (Some(a), Some(b)) if a == b => block,
            _ => {
                let moved = self.alloc(new);
                if !moved.is_null() {
                    ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                    self.dealloc(block, layout);
                }
                moved
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 1).unwrap()
    }

    fn listed(a: &SmallBlocks, c: usize) -> u16 {
        unsafe { (*a.lists.get()).len[c] }
    }

    #[test]
    fn classes_cover_every_small_size_with_room() {
        for size in 1..=LARGEST {
            let c = class(layout(size)).unwrap();
            assert!(class_size(c) >= size, "{size} in class {c}");
            assert!(
                c == 0 || class_size(c - 1) < size,
                "{size} fits a smaller class"
            );
        }
        assert_eq!(class(layout(LARGEST + 1)), None);
        assert_eq!(class(Layout::from_size_align(64, 16).unwrap()), None);
        assert_eq!(class_size(CLASSES - 1), LARGEST);
    }

    #[test]
    fn a_freed_block_is_reused_and_the_lists_are_bounded() {
        let a = SmallBlocks::new();
        unsafe {
            let l = layout(40);
            let c = class(l).unwrap();
            let first = a.alloc(l);
            a.dealloc(first, l);
            assert_eq!(listed(&a, c), 1);
            // Any size of the same class gets the same block back.
            let again = a.alloc(layout(33));
            assert_eq!(again, first);
            assert_eq!(listed(&a, c), 0);
            let blocks: Vec<*mut u8> = (0..KEEP_SMALL + 5).map(|_| a.alloc(l)).collect();
            for &b in &blocks {
                a.dealloc(b, l);
            }
            assert_eq!(listed(&a, c), KEEP_SMALL);
            a.dealloc(again, layout(33));
            assert_eq!(listed(&a, c), KEEP_SMALL);
            let large = class(layout(1500)).unwrap();
            let blocks: Vec<*mut u8> = (0..10).map(|_| a.alloc(layout(1500))).collect();
            for &b in &blocks {
                a.dealloc(b, layout(1500));
            }
            assert_eq!(listed(&a, large), KEEP_LARGE);
        }
    }

    #[test]
    fn realloc_keeps_the_contents_across_classes_and_zeroed_is_zero() {
        let a = SmallBlocks::new();
        unsafe {
            let mut size = 3;
            let mut p = a.alloc(layout(size));
            ptr::copy_nonoverlapping(b"abc".as_ptr(), p, 3);
            for next in [10, 200, 300, 1800, 5000, 100_000, 700, 12] {
                p = a.realloc(p, layout(size), next);
                assert!(!p.is_null());
                assert_eq!(std::slice::from_raw_parts(p, 3), b"abc", "at {next}");
                size = next;
            }
            // A dirty block comes back zeroed when asked so.
            ptr::write_bytes(p, 0xAA, size);
            a.dealloc(p, layout(size));
            let z = a.alloc_zeroed(layout(size));
            assert_eq!(z, p);
            assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
            a.dealloc(z, layout(size));
        }
    }
}
