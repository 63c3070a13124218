//! The allocator the `ws-host` binary runs with: mimalloc, asked the way
//! that keeps its fast path.
//!
//! mimalloc replaced glibc's malloc, which spent ~10% of the server's
//! instructions on the few dozen small buffers an event allocates. The
//! `mimalloc` crate's allocator asks for every block through
//! `mi_malloc_aligned`, and that function's fast path only takes a block its
//! thread freed itself. A block freed by another thread (a decoded event
//! travels from a connection's thread to the handler's; the reply comes
//! back) waits in a list that `mi_malloc`'s slow path collects;
//! `mi_malloc_aligned`'s, unless the size is a power of two, takes a bigger
//! block and aligns it by hand instead. So every echo took two allocations
//! the slow way (~160 instructions each against ~50: the protocol's values
//! are 48 bytes, aligned to 16 for their `i128`), in a 64-byte block
//! (tests/bench/HISTORY.md, "mimalloc asked through `mi_malloc`"). Here an
//! alignment up to 16 goes through `mi_malloc` and the block is checked:
//! mimalloc's blocks of a size that is a multiple of 16 come 16-aligned, and
//! a Rust type's size is a multiple of its alignment, so only a layout made
//! by hand can come back misaligned, and is then asked for again through
//! the aligned call. (The `mimalloc` crate has an open pull request to the
//! same end, purpleprotocol/mimalloc_rust#170.)

// An allocator is unsafe code by nature; no other module of the host has any.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The largest alignment `mi_malloc` is asked for directly; mimalloc
/// documents it as `MI_MAX_ALIGN_SIZE`, `sizeof(max_align_t)`.
const PLAIN_ALIGN: usize = 16;

/// mimalloc, through `mi_malloc` wherever its blocks come aligned.
pub struct Allocator;

fn is_aligned(ptr: *mut c_void, align: usize) -> bool {
    (ptr as usize) & (align - 1) == 0
}

/// A block of `layout` from `plain` (`mi_malloc` or `mi_zalloc`) where the
/// alignment allows and the block comes aligned, else from `aligned`
/// (`mi_malloc_aligned` or `mi_zalloc_aligned`).
#[inline]
fn allocate(
    layout: Layout,
    plain: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    let (size, align) = (layout.size(), layout.align());
    if align <= PLAIN_ALIGN {
        // SAFETY: mimalloc takes any size.
        let ptr = unsafe { plain(size) };
        if is_aligned(ptr, align) {
            return ptr.cast();
        }
        // SAFETY: the block came from mimalloc and was never handed out.
        unsafe { mi::mi_free(ptr) };
    }
    // SAFETY: the alignment is a power of two (`Layout` says so).
    unsafe { aligned(size, align).cast() }
}

// SAFETY: every block comes from mimalloc with the size and alignment asked
// for (checked, else asked for again aligned), and goes back to `mi_free`,
// which takes blocks from any of its calls.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        allocate(layout, mi::mi_malloc, mi::mi_malloc_aligned)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        allocate(layout, mi::mi_zalloc, mi::mi_zalloc_aligned)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller gives back a block this allocator gave.
        unsafe { mi::mi_free(ptr.cast()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        if align <= PLAIN_ALIGN {
            // SAFETY: the caller gives a block of this allocator's.
            let moved = unsafe { mi::mi_realloc(ptr.cast(), new_size) };
            if moved.is_null() || is_aligned(moved, align) {
                return moved.cast();
            }
            // Misaligned: mimalloc's aligned call moves the contents on. The
            // caller's block is already `moved`, so failing here cannot hand
            // it back as the contract wants (null, the old block intact):
            // out of memory at this point is the end of the process.
            // SAFETY: `moved` is a live mimalloc block; the contract keeps
            // `new_size` rounded up to `align` within `isize`, as `Layout`
            // wants.
            unsafe {
                let aligned = mi::mi_realloc_aligned(moved, new_size, align);
                if aligned.is_null() {
                    std::alloc::handle_alloc_error(Layout::from_size_align_unchecked(new_size, align));
                }
                return aligned.cast();
            }
        }
        // SAFETY: as in `alloc`.
        unsafe { mi::mi_realloc_aligned(ptr.cast(), new_size, align).cast() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every alignment and a spread of sizes come back aligned, keep their
    /// contents through a reallocation, and go back.
    #[test]
    fn blocks_are_aligned_and_keep_their_contents() {
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 7, 8, 24, 40, 48, 100, 192, 1000, 5000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: the layout is not zero-sized; every block is
                // written within its size and freed with its layout.
                unsafe {
                    let block = Allocator.alloc(layout);
                    assert!(!block.is_null() && is_aligned(block.cast(), align), "{size} B at {align}");
                    block.write_bytes(0xa5, size);
                    let grown = Allocator.realloc(block, layout, size * 3);
                    assert!(is_aligned(grown.cast(), align), "{size} B grown, at {align}");
                    assert!(std::slice::from_raw_parts(grown, size).iter().all(|&b| b == 0xa5));
                    Allocator.dealloc(grown, Layout::from_size_align(size * 3, align).unwrap());

                    let zeroed = Allocator.alloc_zeroed(layout);
                    assert!(is_aligned(zeroed.cast(), align), "{size} B zeroed at {align}");
                    assert!(std::slice::from_raw_parts(zeroed, size).iter().all(|&b| b == 0));
                    Allocator.dealloc(zeroed, layout);
                }
            }
        }
    }
}
