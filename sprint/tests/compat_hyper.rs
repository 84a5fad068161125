//! hyper 1.x on Sprint through `sprint::compat` (feature `hyper`): HTTP/1.1
//! over TCP and Unix streams, hyper's timer, the executor under HTTP/2, and
//! graceful shutdown. Every case runs once per driver the machine offers.

mod common;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use sprint::compat::{until, DrainTimeout, Executor, GracefulShutdown, Timer};
use sprint::config::IoDriver;
use sprint::net::{TcpListener, TcpStream, UnixStream};
use sprint::sync::oneshot;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn drivers() -> Vec<IoDriver> {
    match sprint::net_driver_probe() {
        Ok(()) => vec![IoDriver::Epoll, IoDriver::Uring],
        Err(why) => {
            common::skip("uring", format_args!("io_uring cannot run here: {why}"));
            vec![IoDriver::Epoll]
        }
    }
}

/// Runs `body` on worker 0 of a one-worker Basic runtime on `driver`.
fn on_worker<F, Fut>(driver: IoDriver, body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let rt = sprint::Builder::new()
        .level(sprint::Level::Basic)
        .read_env(false)
        .workers(1)
        .configure(move |c| {
            c.io_driver = driver;
            c.uring_sqpoll = false;
        })
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let h = sprint::spawn_local_on(0, body).expect("worker 0");
        sprint::time::timeout(Duration::from_secs(30), h)
            .await
            .expect("the case finished within 30 s")
            .expect("the case did not panic");
    });
}

/// Echoes the request's body; a GET gets "hello".
async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    if req.method() == hyper::Method::GET {
        return Ok(Response::new(Full::new(Bytes::from_static(b"hello"))));
    }
    let body = req.into_body().collect().await?.to_bytes();
    Ok(Response::new(Full::new(body)))
}

/// An HTTP/1.1 client connection over `io`, driven by a task of its own.
async fn h1_client<I>(io: I) -> hyper::client::conn::http1::SendRequest<Full<Bytes>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let (send, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .expect("handshake");
    drop(sprint::spawn_local(async move {
        let _ = conn.await;
    }));
    send
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn http1_get_and_a_large_post_over_tcp() {
    for driver in drivers() {
        on_worker(driver, move || async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = sprint::spawn_local(async move {
                let (s, _) = listener.accept().await.unwrap();
                hyper::server::conn::http1::Builder::new()
                    .timer(Timer)
                    .serve_connection(s, hyper::service::service_fn(echo))
                    .await
            });
            let mut send = h1_client(TcpStream::connect(addr).await.unwrap()).await;
            let get = Request::get("/").body(Full::default()).unwrap();
            let res = send.send_request(get).await.unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(
                &res.into_body().collect().await.unwrap().to_bytes()[..],
                b"hello"
            );
            // 1 MiB: many reads into hyper's uninitialised buffer, both ways.
            let big = pattern(1 << 20);
            let post = Request::post("/")
                .body(Full::new(Bytes::from(big.clone())))
                .unwrap();
            let res = send.send_request(post).await.unwrap();
            let got = res.into_body().collect().await.unwrap().to_bytes();
            assert!(got[..] == big[..], "{driver:?}: the echo differs");
            drop(send);
            server
                .await
                .unwrap()
                .expect("the server connection ends cleanly");
        });
    }
}

#[test]
fn http1_over_a_unix_stream_pair() {
    for driver in drivers() {
        on_worker(driver, move || async move {
            let (a, b) = UnixStream::pair().unwrap();
            let server = sprint::spawn_local(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(a, hyper::service::service_fn(echo)),
            );
            let mut send = h1_client(b).await;
            let post = Request::post("/")
                .body(Full::new(Bytes::from_static(b"over unix")))
                .unwrap();
            let res = send.send_request(post).await.unwrap();
            let got = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&got[..], b"over unix");
            drop(send);
            server.await.unwrap().unwrap();
        });
    }
}

#[test]
fn the_timer_ends_a_connection_whose_headers_never_come() {
    for driver in drivers() {
        on_worker(driver, move || async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let wait = Duration::from_millis(100);
            let server = sprint::spawn_local(async move {
                let (s, _) = listener.accept().await.unwrap();
                let start = Instant::now();
                let r = hyper::server::conn::http1::Builder::new()
                    .timer(Timer)
                    .header_read_timeout(wait)
                    .serve_connection(s, hyper::service::service_fn(echo))
                    .await;
                (r, start.elapsed())
            });
            let c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.unwrap();
            let (r, took) = server.await.unwrap();
            let e = r.expect_err("a header read timeout");
            assert!(e.is_timeout(), "{driver:?}: {e}");
            assert!(
                took >= wait,
                "{driver:?}: ended after {took:?}, before the timeout"
            );
            // The server closed its side: the client reads the end (after a
            // 408 response, if hyper sends one).
            let mut buf = [0u8; 256];
            while c.read(&mut buf).await.unwrap() > 0 {}
        });
    }
}

#[test]
fn http2_streams_run_on_the_executor_with_a_non_send_service() {
    for driver in drivers() {
        on_worker(driver, move || async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            // Rc: the service and its futures are !Send.
            let served = Rc::new(std::cell::Cell::new(0u32));
            let count = served.clone();
            let server = sprint::spawn_local(async move {
                let (s, _) = listener.accept().await.unwrap();
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let count = count.clone();
                    async move {
                        count.set(count.get() + 1);
                        let n = req.uri().path().trim_start_matches('/').to_owned();
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(n))))
                    }
                });
                hyper::server::conn::http2::Builder::new(Executor)
                    .timer(Timer)
                    .serve_connection(s, svc)
                    .await
            });
            let io = TcpStream::connect(addr).await.unwrap();
            let (send, conn) = hyper::client::conn::http2::Builder::new(Executor)
                .timer(Timer)
                .handshake::<_, Empty<Bytes>>(io)
                .await
                .unwrap();
            drop(sprint::spawn_local(async move {
                let _ = conn.await;
            }));
            let mut requests = Vec::new();
            for i in 0..16 {
                let mut send = send.clone();
                requests.push(sprint::spawn_local(async move {
                    let req = Request::get(format!("http://x/{i}"))
                        .body(Empty::new())
                        .unwrap();
                    let res = send.send_request(req).await.unwrap();
                    res.into_body().collect().await.unwrap().to_bytes()
                }));
            }
            for (i, r) in requests.into_iter().enumerate() {
                assert_eq!(r.await.unwrap(), i.to_string().as_bytes());
            }
            assert_eq!(served.get(), 16);
            drop(send);
            server.await.unwrap().unwrap();
        });
    }
}

/// A server whose one route waits for `release` before it answers; it
/// says on `entered` when the request has arrived. Serves until `stop`,
/// then shuts down with `deadline` and returns what that returned.
async fn slow_server(
    listener: TcpListener,
    stop: oneshot::Receiver<()>,
    entered: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
    deadline: Duration,
) -> Result<(), DrainTimeout> {
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    let hooks = Rc::new(std::cell::RefCell::new(Some((entered, release))));
    while let Some(accepted) = until(stop.as_mut(), listener.accept()).await {
        let (s, _) = accepted.unwrap();
        let hooks = hooks.clone();
        let svc = hyper::service::service_fn(move |_req: Request<Incoming>| {
            let hook = hooks.borrow_mut().take();
            async move {
                if let Some((entered, release)) = hook {
                    entered.send(()).unwrap();
                    let _ = release.await;
                }
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"slow"))))
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(Timer)
            .serve_connection(s, svc);
        drop(sprint::spawn_local(graceful.watch(conn)));
    }
    drop(listener);
    graceful.shutdown(deadline).await
}

#[test]
fn graceful_shutdown_stops_accepting_and_finishes_the_request_in_flight() {
    for driver in drivers() {
        on_worker(driver, move || async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop_tx, stop) = oneshot::channel();
            let (entered_tx, entered) = oneshot::channel();
            let (release, release_rx) = oneshot::channel();
            let server = sprint::spawn_local(slow_server(
                listener,
                stop,
                entered_tx,
                release_rx,
                Duration::from_secs(20),
            ));
            let mut send = h1_client(TcpStream::connect(addr).await.unwrap()).await;
            let in_flight = sprint::spawn_local(async move {
                let req = Request::get("/").body(Full::default()).unwrap();
                let res = send.send_request(req).await.unwrap();
                let close = res.headers().get("connection").cloned();
                (res.into_body().collect().await.unwrap().to_bytes(), close)
            });
            entered.await.unwrap();
            stop_tx.send(()).unwrap();
            // The listener is closed once the accept loop has ended.
            common::wait_until_async(Duration::from_secs(10), "the listener is closed", || {
                std::net::TcpStream::connect(addr).is_err()
            })
            .await;
            release.send(()).unwrap();
            let (body, close) = in_flight.await.unwrap();
            assert_eq!(&body[..], b"slow");
            assert_eq!(close.as_ref().map(|v| v.as_bytes()), Some(&b"close"[..]));
            assert_eq!(server.await.unwrap(), Ok(()));
        });
    }
}

#[test]
fn graceful_shutdown_drops_what_is_open_at_the_deadline() {
    for driver in drivers() {
        on_worker(driver, move || async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop_tx, stop) = oneshot::channel();
            let (entered_tx, entered) = oneshot::channel();
            // Never released: the request outlives the deadline.
            let (_release, release_rx) = oneshot::channel::<()>();
            let deadline = Duration::from_millis(100);
            let server = sprint::spawn_local(slow_server(
                listener, stop, entered_tx, release_rx, deadline,
            ));
            let mut send = h1_client(TcpStream::connect(addr).await.unwrap()).await;
            let in_flight = sprint::spawn_local(async move {
                let req = Request::get("/").body(Full::default()).unwrap();
                send.send_request(req).await
            });
            entered.await.unwrap();
            stop_tx.send(()).unwrap();
            assert_eq!(
                server.await.unwrap(),
                Err(DrainTimeout { open: 1, deadline })
            );
            let e = in_flight
                .await
                .unwrap()
                .expect_err("the connection was dropped");
            assert!(e.is_incomplete_message() || e.is_canceled(), "{e}");
        });
    }
}
