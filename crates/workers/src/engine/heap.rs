//! Where the JavaScript heap lives: an allocator of its own (mimalloc), apart from the one the
//! rest of the process uses.
//!
//! A connection's long-lived records (its socket in the socket holder, its registration with
//! the reactor) are allocated on the engine's thread, in the middle of the short-lived
//! JavaScript values of the request that accepted it. In one allocator, the freed values leave
//! holes between records that outlive the object's hibernation, and those pages never go back to
//! the system: a hibernated connection cost 1.6 KB instead of 0.9 KB. With its own allocator, the
//! JavaScript heap's pages empty as a whole and [`give_back`] returns them.

use rquickjs::allocator::Allocator;

/// The JavaScript heap's allocator. QuickJS counts what it allocates and enforces the memory
/// limit itself, before calling it.
pub(crate) struct JsHeap;

// SAFETY: every block comes from mimalloc and goes back to it. `alloc`, `calloc` and `realloc`
// return mimalloc's blocks (aligned to at least 16 bytes) or null; `dealloc`, `realloc` and
// `usable_size` receive only blocks of this allocator, as the trait requires of its callers.
#[allow(unsafe_code)]
unsafe impl Allocator for JsHeap {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        // SAFETY: mi_malloc has no preconditions.
        unsafe { libmimalloc_sys::mi_malloc(size).cast() }
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        // SAFETY: mi_calloc has no preconditions (it answers null if the product overflows).
        unsafe { libmimalloc_sys::mi_calloc(count, size).cast() }
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        // SAFETY: the caller passes a block of this allocator.
        unsafe { libmimalloc_sys::mi_free(ptr.cast()) }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a block of this allocator (or null, which allocates).
        unsafe { libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast() }
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        // SAFETY: the caller passes a block of this allocator.
        unsafe { libmimalloc_sys::mi_usable_size(ptr.cast()) }
    }
}

/// Returns the JavaScript heap's free pages to the system (after a garbage collection, on the
/// engine's thread, whose heap it is).
pub(crate) fn give_back() {
    // SAFETY: mi_collect only walks mimalloc's own free lists.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}
