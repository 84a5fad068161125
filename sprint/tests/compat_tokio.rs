//! tokio's I/O traits on Sprint's streams (feature `tokio-io`): tokio-util
//! codecs and a tokio-rustls handshake over loopback TCP, under Sprint's
//! runtime (no tokio runtime anywhere), on a worker as a server's tasks
//! are. Every case runs once per driver the machine offers.

mod common;

use futures::{SinkExt, StreamExt};
use sprint::config::IoDriver;
use sprint::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_util::codec::{Framed, FramedRead, FramedWrite, LengthDelimitedCodec, LinesCodec};

fn drivers() -> Vec<IoDriver> {
    match sprint::net_driver_probe() {
        Ok(()) => vec![IoDriver::Epoll, IoDriver::Uring],
        Err(why) => {
            common::skip("uring", format_args!("io_uring cannot run here: {why}"));
            vec![IoDriver::Epoll]
        }
    }
}

/// Runs `body` on worker 0 of a one-worker Basic runtime on `driver`,
/// within 30 s.
fn run<F, Fut>(driver: IoDriver, body: F)
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

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (s, _) = listener.accept().await.unwrap();
    (c, s)
}

#[test]
fn lines_codec_round_trip() {
    for driver in drivers() {
        run(driver, move || async move {
            let (c, s) = pair().await;
            // The server reads and writes through the borrowed halves.
            let server = sprint::spawn(async move {
                let mut s = s;
                let (r, w) = s.split();
                let mut lines = FramedRead::new(r, LinesCodec::new());
                let mut out = FramedWrite::new(w, LinesCodec::new());
                while let Some(line) = lines.next().await {
                    out.send(line.unwrap().to_uppercase()).await.unwrap();
                }
            });
            let mut framed = Framed::new(c, LinesCodec::new());
            for i in 0..1000 {
                framed.send(format!("line {i}")).await.unwrap();
                let back = framed.next().await.unwrap().unwrap();
                assert_eq!(back, format!("LINE {i}"), "{driver:?}");
            }
            // Closing shuts our write side down: the server sees the end.
            SinkExt::<String>::close(&mut framed).await.unwrap();
            server.await.unwrap();
            assert!(framed.next().await.is_none(), "{driver:?}");
        });
    }
}

#[test]
fn length_delimited_frames_over_split_halves() {
    for driver in drivers() {
        run(driver, move || async move {
            let (c, s) = pair().await;
            let server = sprint::spawn(async move {
                let (r, w) = s.into_split();
                let mut r = FramedRead::new(r, LengthDelimitedCodec::new());
                let mut w = FramedWrite::new(w, LengthDelimitedCodec::new());
                while let Some(frame) = r.next().await {
                    w.send(frame.unwrap().freeze()).await.unwrap();
                }
                SinkExt::<bytes::Bytes>::close(&mut w).await.unwrap();
            });
            let (r, w) = c.into_split();
            let mut r = FramedRead::new(r, LengthDelimitedCodec::new());
            let mut w = FramedWrite::new(w, LengthDelimitedCodec::new());
            // Frames from empty to 1 MiB: many reads into the codec's
            // uninitialised spare capacity.
            for len in [0usize, 1, 100, 65_536, 300_000, 1 << 20] {
                let frame: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                w.send(bytes::Bytes::from(frame.clone())).await.unwrap();
                let back = r.next().await.unwrap().unwrap();
                assert!(
                    back[..] == frame[..],
                    "{driver:?}: a {len}-byte frame differs"
                );
            }
            SinkExt::<bytes::Bytes>::close(&mut w).await.unwrap();
            assert!(r.next().await.is_none(), "{driver:?}");
            server.await.unwrap();
        });
    }
}

/// A self-signed certificate for `localhost`, made now, and the configs
/// of a server that presents it and a client that trusts only it.
fn tls_configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = made.cert.der().clone();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(made.key_pair.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.into())
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

#[test]
fn tls_handshake_and_echo_with_tokio_rustls() {
    for driver in drivers() {
        run(driver, move || async move {
            let (server_cfg, client_cfg) = tls_configs();
            let (c, s) = pair().await;
            let server = sprint::spawn(async move {
                let mut tls = tokio_rustls::TlsAcceptor::from(server_cfg)
                    .accept(s)
                    .await
                    .unwrap();
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = tls.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    tls.write_all(&buf[..n]).await.unwrap();
                }
                tls.shutdown().await.unwrap();
            });
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut tls = tokio_rustls::TlsConnector::from(client_cfg)
                .connect(name, c)
                .await
                .unwrap();
            assert!(tls.get_ref().1.protocol_version().is_some());
            // 200 KB in 40 KB pieces: more than one TLS record each.
            let msg: Vec<u8> = (0..200_000).map(|i| (i % 253) as u8).collect();
            for piece in msg.chunks(40_000) {
                tls.write_all(piece).await.unwrap();
                let mut back = vec![0u8; piece.len()];
                tls.read_exact(&mut back).await.unwrap();
                assert!(back == piece, "{driver:?}: the echo differs");
            }
            tls.shutdown().await.unwrap();
            let mut rest = Vec::new();
            tls.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty(), "{driver:?}");
            server.await.unwrap();
        });
    }
}
