//! The JS-thread I/O engine: commands written to the socket from the JS thread, replies read
//! when libuv wakes that thread, promises settled right there; and the completion queue that
//! brings the runtime's results back to it.
//!
//! # Contract
//! - **Which thread.** Everything here runs on the JS thread of one Node environment, except
//!   what the runtime (tokio) does through [`completer::Shared`]: it pushes completions and
//!   hand-overs onto a queue and wakes the JS thread with a threadsafe function. A function that
//!   must run on the JS thread takes a [`js_thread::JsEnv`], the token that proves it (made only
//!   by the `unsafe` `JsEnv::assume` at the raw entry points: Node-API callbacks, the
//!   completion queue's call, libuv callbacks); no `unsafe fn` states that rule in a comment.
//!   Values that may only be touched on the JS thread live in [`js_thread::JsThread`], which
//!   checks the thread on every access and never drops its value elsewhere.
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
//! - **Unsafe.** Raw Node-API and libuv calls live in these modules and in `binding::js` (the
//!   JS-value helper: `Js`, built on a `JsEnv`) and `binding::args` (argument reading); feature
//!   code calls their safe methods. Every `unsafe` block carries a `// SAFETY:` note (the crate
//!   denies `clippy::undocumented_unsafe_blocks`).

pub(crate) mod batch;
pub(crate) mod completer;
pub(crate) mod driver;
pub(crate) mod entry;
pub(crate) mod js_thread;
pub(crate) mod lanes;
pub(crate) mod outcome;
pub(crate) mod per_env;
pub(crate) mod tag;
pub(crate) mod uv;
