//! On io_uring, an operation the kernel completes at submission is
//! complete in the poll that starts it: a send with room in the socket's
//! buffer, a receive with data waiting. The worker's own submissions used
//! to wait for its next turn and then for the task's turn in the run queue
//! (issue 15: 30-100 µs a send under load); now the socket turns the
//! driver at once (`sprint_core::driver::turn_now`). (Not asked of epoll:
//! there a receive waits for the readiness the driver last reported.)

mod common;

use sprint::Runtime;
use sprint_core::config::IoDriver;
use sprint_core::Level;
use sprint_io::net::{TcpListener, TcpStream};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

fn rt(driver: IoDriver) -> Runtime {
    sprint::Builder::new()
        .level(Level::Standard)
        .read_env(false)
        .workers(1)
        .configure(move |c| {
            c.io_driver = driver;
            c.uring_sqpoll = false;
        })
        .build()
        .expect("runtime with a driver")
}

/// Polls `f` once, with a waker that does nothing.
fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
    let mut f = pin!(f);
    f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_send_with_room_and_a_receive_with_data_complete_in_the_poll_that_starts_them() {
    if !common::uring() {
        return;
    }
    {
        let d = IoDriver::Uring;
        let rt = rt(d);
        let out = rt.block_on(async move {
            // On the worker: only the ring's owner submits through a turn.
            sprint::spawn(async move {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let c = TcpStream::connect(addr).await.unwrap();
                let (s, _) = listener.accept().await.unwrap();
                let mut seen = Vec::new();
                for round in 0..50u8 {
                    let msg = vec![round; 300];
                    let sent = match poll_once(c.write_owned(msg)) {
                        Poll::Ready((r, _)) => r.unwrap(),
                        Poll::Pending => return Err(format!("send {round} pending")),
                    };
                    let mut buf = [0u8; 1024];
                    let got = match poll_once(s.read(&mut buf)) {
                        Poll::Ready(r) => r.unwrap(),
                        Poll::Pending => return Err(format!("receive {round} pending")),
                    };
                    seen.push((sent, got, buf[..got].iter().all(|&b| b == round)));
                    // The owned receive too, on the other side.
                    let sent = match poll_once(s.write_owned(vec![round; 100])) {
                        Poll::Ready((r, _)) => r.unwrap(),
                        Poll::Pending => return Err(format!("reply {round} pending")),
                    };
                    let (got, data) = match poll_once(c.read_owned(Vec::with_capacity(512))) {
                        Poll::Ready((r, b)) => (r.unwrap(), b),
                        Poll::Pending => return Err(format!("owned receive {round} pending")),
                    };
                    seen.push((sent, got, data.iter().all(|&b| b == round)));
                }
                Ok(seen)
            })
            .await
            .unwrap()
        });
        let seen = out.unwrap_or_else(|e| panic!("{d}: {e}"));
        assert_eq!(seen.len(), 100, "{d}");
        for (i, (sent, got, intact)) in seen.into_iter().enumerate() {
            assert_eq!(sent, got, "{d}: exchange {i} arrived whole in one receive");
            assert!(intact, "{d}: exchange {i} arrived intact");
        }
    }
}
