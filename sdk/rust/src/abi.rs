//! The ABI plumbing behind [`actor!`](crate::actor): the bump allocator, the
//! result record and the calling of handlers. Authors do not call these.
use alloc::string::String;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

use crate::Reply;

const PAGE: usize = 65536;

/// A bump allocator over the memory after the module's data and stack
/// (`__heap_base`). `reset` forgets everything; the host calls it (through the
/// `theater_reset_heap` export) before it places the inputs of each call, so
/// memory lives for one call, as docs/actor-abi.md describes. Freeing does
/// nothing, except that the most recent allocation can grow in place.
pub struct BumpAllocator {
    top: UnsafeCell<usize>,
}

// SAFETY: an actor is single-threaded (wasm32 without threads).
unsafe impl Sync for BumpAllocator {}

impl BumpAllocator {
    pub const fn new() -> BumpAllocator {
        BumpAllocator { top: UnsafeCell::new(0) }
    }

    fn heap_base() -> usize {
        #[cfg(target_arch = "wasm32")]
        {
            extern "C" {
                static __heap_base: u8;
            }
            // SAFETY: only the address of the linker's symbol is taken.
            unsafe { core::ptr::addr_of!(__heap_base) as usize }
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            0
        }
    }

    /// Forgets every allocation.
    pub fn reset(&self) {
        // SAFETY: single-threaded; see above.
        unsafe { *self.top.get() = Self::heap_base() }
    }

    /// Makes sure memory reaches `end`; false when it cannot grow.
    fn ensure(end: usize) -> bool {
        #[cfg(target_arch = "wasm32")]
        {
            let have = core::arch::wasm32::memory_size(0) * PAGE;
            if end > have {
                let pages = (end - have + PAGE - 1) / PAGE;
                if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                    return false;
                }
            }
            true
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = end;
            false
        }
    }
}

impl Default for BumpAllocator {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let top = &mut *self.top.get();
        if *top == 0 {
            *top = Self::heap_base();
        }
        let align = layout.align().max(8);
        let start = match top.checked_add(align - 1) {
            Some(v) => v & !(align - 1),
            None => return core::ptr::null_mut(),
        };
        let end = match start.checked_add(layout.size()) {
            Some(v) => v,
            None => return core::ptr::null_mut(),
        };
        if start == 0 || !Self::ensure(end) {
            return core::ptr::null_mut();
        }
        *top = end;
        start as *mut u8
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let top = &mut *self.top.get();
        let start = ptr as usize;
        if start + layout.size() == *top {
            // the most recent allocation: grow or shrink it where it is
            let end = start + new_size;
            if new_size <= layout.size() || Self::ensure(end) {
                *top = end;
                return ptr;
            }
            return core::ptr::null_mut();
        }
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let new = self.alloc(new_layout);
        if !new.is_null() {
            core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
        }
        new
    }
}

/// The allocator of every actor built with the `allocator` feature (on wasm32
/// only: elsewhere, as in the crate's own tests, the system's allocator stays).
#[cfg(all(feature = "allocator", target_arch = "wasm32"))]
#[global_allocator]
pub static HEAP: BumpAllocator = BumpAllocator::new();

#[cfg(not(all(feature = "allocator", target_arch = "wasm32")))]
static HEAP: BumpAllocator = BumpAllocator::new();

/// `theater_alloc`: `size` fresh bytes for the host (0 when memory is full).
pub fn alloc(size: u32) -> u32 {
    let layout = match Layout::from_size_align(size.max(1) as usize, 8) {
        Ok(l) => l,
        Err(_) => return 0,
    };
    // SAFETY: the layout is valid and not zero-sized.
    unsafe { HEAP.alloc(layout) as u32 }
}

/// `theater_reset_heap`.
pub fn reset_heap() {
    HEAP.reset()
}

/// The result record (docs/actor-abi.md): status, state, output. Static, so it
/// outlives the call and survives heap resets.
struct Record(UnsafeCell<[u32; 5]>);
// SAFETY: single-threaded.
unsafe impl Sync for Record {}
static RECORD: Record = Record(UnsafeCell::new([0; 5]));

/// Leaks `bytes` until the next heap reset; (pointer, length) for the host.
fn leak(bytes: Vec<u8>) -> (u32, u32) {
    let bytes = core::mem::ManuallyDrop::new(bytes);
    (bytes.as_ptr() as u32, bytes.len() as u32)
}

fn record(status: u32, state: (u32, u32), out: (u32, u32)) -> u32 {
    let r = RECORD.0.get();
    // SAFETY: single-threaded; the record is only written here.
    unsafe {
        *r = [status, state.0, state.1, out.0, out.1];
        r as u32
    }
}

/// The bytes at (ptr, len) that the host placed for this call.
///
/// # Safety
/// The host guarantees the pair lies in memory from `theater_alloc`.
unsafe fn input<'a>(ptr: u32, len: u32) -> &'a [u8] {
    if len == 0 || ptr == 0 {
        &[]
    } else {
        core::slice::from_raw_parts(ptr as *const u8, len as usize)
    }
}

/// Calls a handler with the state and the input and writes its answer into
/// the result record. On `Err` the state is given back unchanged.
pub fn call<F>(state_ptr: u32, state_len: u32, in_ptr: u32, in_len: u32, f: F) -> u32
where
    F: FnOnce(&[u8], &[u8]) -> Result<Reply, String>,
{
    // SAFETY: the host placed both inputs with theater_alloc for this call.
    let (state, input) = unsafe { (input(state_ptr, state_len), input(in_ptr, in_len)) };
    match f(state, input) {
        Ok(reply) => record(0, leak(reply.state), leak(reply.output)),
        Err(msg) => record(1, (state_ptr, state_len), leak(msg.into_bytes())),
    }
}
