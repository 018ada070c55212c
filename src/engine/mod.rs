//! The JS-thread I/O engine: commands written to the socket from the JS thread, replies read
//! when libuv wakes that thread, promises settled right there; and the completion queue that
//! brings the runtime's results back to it.
//!
//! # Contract
//! - **Which thread.** Everything here runs on the JS thread of one Node environment, except
//!   what the runtime (tokio) does through [`completer::Shared`]: it pushes completions and
//!   hand-overs onto a queue and wakes the JS thread with a threadsafe function. Values that may
//!   only be touched on the JS thread live in [`js_thread::JsThread`], which checks the thread on
//!   every access and never drops its value elsewhere.
//! - **Who owns what.** A service owns its `Batcher` (an `Rc`: JS thread); the batcher shares
//!   its `Batch` with the flush function it registers; the batch owns the service's
//!   [`driver::Driver`] (or, in cluster mode, the [`lanes::Lanes`] and one driver per master).
//!   A driver owns its socket and its two libuv handles (poll, timer), whose data points back at
//!   it: the handles are always closed before the driver can go.
//! - **How it ends.** `disconnect()` or the service's garbage collection shuts a driver down:
//!   it closes at once, or once the replies still due are in. A Node environment that ends (a
//!   worker's `terminate()` or `process.exit()`, the process exit) runs [`per_env`]'s cleanup
//!   hook first: every open driver closes its handles before Node closes the loop, and the
//!   environment is marked gone, after which nothing here calls Node-API (settlements are
//!   dropped, `Drop`s skip their Node-API calls).
//! - **Unsafe.** Raw Node-API and libuv calls of the engine live in these modules; every
//!   `unsafe` block carries a `// SAFETY:` note (the crate denies
//!   `clippy::undocumented_unsafe_blocks`).

pub(crate) mod batch;
pub(crate) mod completer;
pub(crate) mod driver;
pub(crate) mod js_thread;
pub(crate) mod lanes;
pub(crate) mod per_env;
pub(crate) mod uv;
