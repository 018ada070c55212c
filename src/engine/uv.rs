//! The few libuv functions the JS-thread connection needs, looked up at run time in the host
//! process (Node exports libuv). When any is missing (another runtime, Windows) the service falls
//! back to the runtime-thread path and nothing else changes. A host may also export them as
//! stubs that abort the process when called (Bun): such a host is recognised at module init
//! (`per_env::install` sees `process.versions.bun`) and [`refuse`] turns libuv off before any
//! libuv function is called.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

pub type Handle = c_void;
pub type Loop = c_void;
pub type PollCb = unsafe extern "C" fn(*mut Handle, c_int, c_int);
pub type TimerCb = unsafe extern "C" fn(*mut Handle);
pub type CloseCb = unsafe extern "C" fn(*mut Handle);

/// `uv_handle_type` values (stable across libuv 1.x).
pub const UV_POLL: c_int = 8;
pub const UV_TIMER: c_int = 13;
pub const UV_READABLE: c_int = 1;
pub const UV_WRITABLE: c_int = 2;

type SizeFn = unsafe extern "C" fn(c_int) -> usize;
type InitFdFn = unsafe extern "C" fn(*mut Loop, *mut Handle, c_int) -> c_int;
type PollStartFn = unsafe extern "C" fn(*mut Handle, c_int, PollCb) -> c_int;
type HandleFn = unsafe extern "C" fn(*mut Handle) -> c_int;
type InitFn = unsafe extern "C" fn(*mut Loop, *mut Handle) -> c_int;
type TimerStartFn = unsafe extern "C" fn(*mut Handle, TimerCb, u64, u64) -> c_int;
type CloseFn = unsafe extern "C" fn(*mut Handle, CloseCb);
type VoidFn = unsafe extern "C" fn(*mut Handle);
type SetDataFn = unsafe extern "C" fn(*mut Handle, *mut c_void);
type GetDataFn = unsafe extern "C" fn(*const Handle) -> *mut c_void;

pub struct Uv {
    pub handle_size: SizeFn,
    pub poll_init: InitFdFn,
    pub poll_start: PollStartFn,
    pub poll_stop: HandleFn,
    pub timer_init: InitFn,
    pub timer_start: TimerStartFn,
    pub timer_stop: HandleFn,
    pub close: CloseFn,
    pub unref: VoidFn,
    pub set_data: SetDataFn,
    pub get_data: GetDataFn,
}

#[cfg(unix)]
fn lookup(name: &CStr) -> *mut c_void {
    // SAFETY: `name` is NUL-terminated (a `CStr`); `dlsym` with RTLD_DEFAULT only reads the
    // process's symbol tables and returns NULL when the name is not exported.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr() as *const c_char) }
}

#[cfg(not(unix))]
fn lookup(_name: &CStr) -> *mut c_void {
    std::ptr::null_mut()
}

macro_rules! sym {
    ($name:literal, $ty:ty) => {{
        let p = lookup($name);
        if p.is_null() {
            return None;
        }
        // SAFETY: the symbol is libuv's function of that name; the signature matches libuv 1.x.
        unsafe { std::mem::transmute::<*mut c_void, $ty>(p) }
    }};
}

fn load() -> Option<Uv> {
    if std::env::var_os("APP_REDIS_NO_UV").is_some() {
        return None;
    }
    Some(Uv {
        handle_size: sym!(c"uv_handle_size", SizeFn),
        poll_init: sym!(c"uv_poll_init", InitFdFn),
        poll_start: sym!(c"uv_poll_start", PollStartFn),
        poll_stop: sym!(c"uv_poll_stop", HandleFn),
        timer_init: sym!(c"uv_timer_init", InitFn),
        timer_start: sym!(c"uv_timer_start", TimerStartFn),
        timer_stop: sym!(c"uv_timer_stop", HandleFn),
        close: sym!(c"uv_close", CloseFn),
        unref: sym!(c"uv_unref", VoidFn),
        set_data: sym!(c"uv_handle_set_data", SetDataFn),
        get_data: sym!(c"uv_handle_get_data", GetDataFn),
    })
}

/// Set when the host's libuv functions must not be called (see the module doc).
static REFUSED: AtomicBool = AtomicBool::new(false);

/// The host exports libuv functions that do not work (Bun's abort): every service of this
/// process takes the runtime path from now on.
pub fn refuse() {
    REFUSED.store(true, Ordering::Release);
}

/// libuv, when the host exports it and it works.
pub fn uv() -> Option<&'static Uv> {
    static UV: OnceLock<Option<Uv>> = OnceLock::new();
    if REFUSED.load(Ordering::Acquire) {
        return None;
    }
    UV.get_or_init(load).as_ref()
}

/// Words reserved per handle: libuv's poll and timer handles are far smaller (about 160 bytes).
const HANDLE_WORDS: usize = 64;

/// Memory for one libuv handle of `kind` (null if libuv says it needs more than we reserve),
/// freed by [`free_handle`] from its close callback.
pub fn alloc_handle(uv: &Uv, kind: c_int) -> *mut Handle {
    // SAFETY: `uv_handle_size` is a pure lookup by handle type, callable from any thread.
    let size = unsafe { (uv.handle_size)(kind) };
    if size == 0 || size > HANDLE_WORDS * 8 {
        return std::ptr::null_mut();
    }
    Box::into_raw(Box::new([0u64; HANDLE_WORDS])) as *mut Handle
}

/// Frees memory from [`alloc_handle`].
///
/// # Safety
/// `h` must come from `alloc_handle` and be closed (called as its close callback).
pub unsafe extern "C" fn free_handle(h: *mut Handle) {
    if !h.is_null() {
        // SAFETY: `h` was made by `alloc_handle` from this Box type and libuv is done with it
        // (this is its close callback, called once): the caller's contract.
        drop(unsafe { Box::from_raw(h as *mut [u64; HANDLE_WORDS]) });
    }
}
