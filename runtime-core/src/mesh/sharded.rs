//! Sharded state: one instance of a value per worker, and closures run on
//! a chosen worker's instance (Seastar's `sharded<T>` and `invoke_on`).
//!
//! Each worker's instance lives on that worker's thread only, so it needs
//! no lock and need not be `Send`; it is built by the closure given to
//! [`Sharded::new`] the first time that worker touches it. A call from a
//! task on worker `i` to worker `j` travels as a message on ring `i → j`
//! of a [`Mesh`]: worker `j`'s server task runs the closure on its
//! instance and sends the reply back on ring `j → i`, whose server hands
//! it to the waiting caller on its own thread. Calls from outside the
//! runtime (`block_on` on another thread) go through the runtime's inbox
//! instead (`spawn_on`): there is no ring from a thread that is not a
//! worker.
//!
//! A server never waits for room to send a reply: a full reply ring hands
//! the reply to a task of its own, so two workers calling each other with
//! full rings cannot deadlock. A panic in a closure is caught on the
//! serving worker and raised again in the caller. When the last
//! [`Sharded`] handle goes (every call in flight holds one), the mesh
//! closes, each server ends, and each instance is dropped on its worker.

use super::local::WaitSlot;
use super::{Mesh, MeshError, Sender};
use crate::sync::oneshot;
use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};

type Init<T> = Arc<dyn Fn(usize) -> T + Send + Sync>;
/// What a reply does on the caller's worker: complete the call.
type Deliver = Box<dyn FnOnce() + Send>;
/// A call: runs on the target's instance, returns its delivery.
type Job<T> = Box<dyn FnOnce(&mut T) -> Deliver + Send>;
type Outcome<R> = Result<R, Box<dyn Any + Send>>;

enum Envelope<T> {
    Call { job: Job<T>, from: usize },
    Reply(Deliver),
}

/// One value per worker; see the module documentation. Cheap to clone,
/// `Send + Sync` whatever `T` is.
///
/// ```
/// # let rt = sprint_core::Runtime::new(
/// #     { let mut c = sprint_core::Config::for_level(sprint_core::Level::Basic);
/// #       c.workers = Some(2); c.rt_policy = sprint_core::config::RtPolicy::None; c },
/// #     None).unwrap();
/// use sprint_core::mesh::Sharded;
/// // A counter per worker, each starting at its worker's index.
/// let counters = Sharded::new(rt.handle(), |worker| worker as u64).unwrap();
/// let c = counters.clone();
/// let total = rt.handle().spawn_local_on(0, move || async move {
///     c.invoke_on(1, |n| { *n += 10; *n }).await.unwrap()
/// }).unwrap();
/// assert_eq!(rt.block_on(total).unwrap(), 11);
/// ```
pub struct Sharded<T: 'static> {
    inner: Arc<Shared<T>>,
}

struct Shared<T: 'static> {
    mesh: Mesh<Envelope<T>>,
    id: u64,
    init: Init<T>,
    rt: crate::Handle,
}

/// Tells sharded values apart in a worker's registry.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A worker's part of one `Sharded`: its mesh sender and its instance.
struct Local<T: 'static> {
    sender: Sender<Envelope<T>>,
    worker: usize,
    value: RefCell<Option<T>>,
    init: Init<T>,
}

thread_local! {
    /// The `Sharded` values this worker takes part in, by id.
    static LOCALS: RefCell<Vec<(u64, Rc<dyn Any>)>> = const { RefCell::new(Vec::new()) };
}

impl<T: 'static> Local<T> {
    /// This worker's part of `shared`, made on first use.
    fn get(shared: &Shared<T>) -> Result<Rc<Local<T>>, MeshError> {
        Self::get_parts(&shared.mesh, shared.id, &shared.init)
    }

    fn get_parts(
        mesh: &Mesh<Envelope<T>>,
        id: u64,
        init: &Init<T>,
    ) -> Result<Rc<Local<T>>, MeshError> {
        let found = LOCALS.with(|l| {
            l.borrow()
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, local)| local.clone())
        });
        if let Some(local) = found {
            return Ok(local
                .downcast::<Local<T>>()
                .unwrap_or_else(|_| unreachable!("one type per sharded id")));
        }
        let sender = mesh.sender()?;
        let local = Rc::new(Local {
            worker: sender.worker(),
            sender,
            value: RefCell::new(None),
            init: init.clone(),
        });
        LOCALS.with(|l| l.borrow_mut().push((id, local.clone())));
        Ok(local)
    }

    /// Runs `f` on this worker's instance, building it first if needed.
    fn with_value<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut value = self.value.borrow_mut();
        f(value.get_or_insert_with(|| (self.init)(self.worker)))
    }
}

/// Takes a worker's part out of its registry when its server ends.
struct Unregister(u64);

impl Drop for Unregister {
    fn drop(&mut self) {
        let gone = LOCALS.with(|l| {
            let mut l = l.borrow_mut();
            let i = l.iter().position(|(id, _)| *id == self.0)?;
            Some(l.swap_remove(i))
        });
        // Dropped outside the registry's borrow: the instance's drop code
        // may use other sharded values.
        drop(gone);
    }
}

impl<T: 'static> Sharded<T> {
    /// Starts one server task per worker of `handle`'s runtime; worker
    /// `w`'s instance is `init(w)`, built on worker `w` when first used.
    pub fn new(
        handle: &crate::Handle,
        init: impl Fn(usize) -> T + Send + Sync + 'static,
    ) -> Result<Sharded<T>, crate::SpawnError> {
        let shared = Arc::new(Shared {
            mesh: Mesh::new(handle),
            id: NEXT_ID.fetch_add(1, Relaxed),
            init: Arc::new(init),
            rt: handle.clone(),
        });
        for w in 0..handle.workers() {
            let mesh = shared.mesh.clone();
            let (id, init) = (shared.id, shared.init.clone());
            handle.spawn_local_on(w, move || serve(mesh, id, init))?;
        }
        Ok(Sharded { inner: shared })
    }

    /// How many instances (the runtime's workers).
    pub fn workers(&self) -> usize {
        self.inner.mesh.workers()
    }

    /// Runs `f` on worker `worker`'s instance and returns its result. From
    /// a task on a worker the call travels over the mesh; from any other
    /// thread, through the runtime's inbox. A panic in `f` is raised again
    /// here. `f` must not call [`Sharded::local`] of the same value.
    pub fn invoke_on<R, F>(&self, worker: usize, f: F) -> InvokeOn<T, R>
    where
        F: FnOnce(&mut T) -> R + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Outcome<R>>();
        let job: Job<T> = Box::new(move |value: &mut T| {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(value)));
            Box::new(move || {
                // The caller may have given up; then the result is dropped.
                let _ = tx.send(out);
            })
        });
        InvokeOn {
            shared: self.inner.clone(),
            worker,
            call: Some(job),
            reply: rx,
            slot: WaitSlot::default(),
            sent: false,
        }
    }

    /// Runs `f` on the current worker's instance, at once; `None` if this
    /// thread is not a worker of the runtime.
    pub fn local<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let local = Local::get(&self.inner).ok()?;
        Some(local.with_value(f))
    }
}

impl<T: 'static> Clone for Sharded<T> {
    fn clone(&self) -> Self {
        Sharded {
            inner: self.inner.clone(),
        }
    }
}

impl<T: 'static> std::fmt::Debug for Sharded<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharded")
            .field("id", &self.inner.id)
            .field("workers", &self.workers())
            .finish()
    }
}

impl<T: 'static> Drop for Shared<T> {
    fn drop(&mut self) {
        // No call is in flight (each holds a handle): the servers end.
        self.mesh.close();
    }
}

/// A worker's server: runs the calls that arrive, delivers the replies.
async fn serve<T: 'static>(mesh: Mesh<Envelope<T>>, id: u64, init: Init<T>) {
    let _unregister = Unregister(id);
    let (local, rx) = match (Local::get_parts(&mesh, id, &init), mesh.receiver()) {
        (Ok(local), Ok(rx)) => (local, rx),
        // Ports were taken for this worker already: nothing to serve.
        _ => return,
    };
    // Only the `Sharded` handles keep the mesh open, not its servers.
    drop((mesh, init));
    while let Some(envelope) = rx.recv().await {
        match envelope {
            Envelope::Call { job, from } => {
                let deliver = local.with_value(job);
                let reply = Envelope::Reply(deliver);
                if let Err(e) = local.sender.try_send_to(from, reply) {
                    if let MeshError::Full { .. } = e.error {
                        // Never wait here: the caller's server may be
                        // waiting for room on a ring this one drains.
                        let sender = local.sender.clone();
                        crate::spawn_local(async move {
                            let _ = sender.send_to(from, e.message).await;
                        });
                    }
                }
            }
            Envelope::Reply(deliver) => deliver(),
        }
    }
}

/// The future of [`Sharded::invoke_on`].
#[must_use = "futures do nothing unless awaited"]
pub struct InvokeOn<T: 'static, R> {
    shared: Arc<Shared<T>>,
    worker: usize,
    call: Option<Job<T>>,
    reply: oneshot::Receiver<Outcome<R>>,
    slot: WaitSlot,
    sent: bool,
}

// Nothing in it is pinned: the call moves into the ring, the reply
// receiver is `Unpin`.
impl<T: 'static, R> Unpin for InvokeOn<T, R> {}

impl<T: 'static, R: Send + 'static> Future for InvokeOn<T, R> {
    type Output = Result<R, MeshError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let workers = this.shared.mesh.workers();
        if this.worker >= workers {
            return Poll::Ready(Err(MeshError::NoSuchWorker {
                worker: this.worker,
                workers,
            }));
        }
        if !this.sent {
            match Local::get(&this.shared) {
                Ok(local) => {
                    let mut msg = this.call.take().map(|job| Envelope::Call {
                        job,
                        from: local.worker,
                    });
                    let sent = local
                        .sender
                        .poll_send_to(this.worker, &mut msg, &this.slot, cx);
                    if let Some(Envelope::Call { job, .. }) = msg {
                        this.call = Some(job);
                    }
                    match sent {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e.error)),
                        Poll::Ready(Ok(())) => this.sent = true,
                    }
                }
                Err(MeshError::NotOnWorker) => {
                    let job = this.call.take().expect("not sent yet");
                    let shared = this.shared.clone();
                    let spawned = this.shared.rt.spawn_on(this.worker, async move {
                        if let Ok(local) = Local::get(&shared) {
                            local.with_value(job)();
                        }
                    });
                    if spawned.is_err() {
                        return Poll::Ready(Err(MeshError::Closed {
                            worker: this.worker,
                        }));
                    }
                    this.sent = true;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        match Pin::new(&mut this.reply).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Ok(value))) => Poll::Ready(Ok(value)),
            Poll::Ready(Ok(Err(panic))) => std::panic::resume_unwind(panic),
            // The call was dropped unrun: the runtime shut down.
            Poll::Ready(Err(_)) => Poll::Ready(Err(MeshError::Closed {
                worker: this.worker,
            })),
        }
    }
}

impl<T: 'static, R> std::fmt::Debug for InvokeOn<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvokeOn")
            .field("worker", &self.worker)
            .field("sent", &self.sent)
            .finish()
    }
}
