use super::*;
use serde::Deserialize;
use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::net::UnixStream;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Msg {
    Hello { name: String, n: u64 },
    Blob(Vec<u8>),
    Socket { port: u16 },
}

fn pair() -> (Channel, Channel) {
    let (a, b) = socketpair().expect("socketpair");
    (Channel::new(a), Channel::new(b))
}

#[test]
fn blocking_round_trip_many_messages() {
    let (a, mut b) = pair();
    for i in 0..100u64 {
        a.send(&Msg::Hello {
            name: format!("peer{i}"),
            n: i,
        })
        .expect("send");
    }
    for i in 0..100u64 {
        let m: Msg = b.recv().expect("recv");
        assert_eq!(
            m,
            Msg::Hello {
                name: format!("peer{i}"),
                n: i
            }
        );
    }
}

#[test]
fn large_frame_crosses_many_reads() {
    let (a, mut b) = pair();
    let blob: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    let expect = blob.clone();
    let t = std::thread::spawn(move || a.send(&Msg::Blob(blob)).expect("send"));
    let m: Msg = b.recv().expect("recv");
    t.join().expect("join");
    assert_eq!(m, Msg::Blob(expect));
}

#[test]
fn oversized_frame_refused_by_sender() {
    let (a, _b) = socketpair().expect("socketpair");
    let a = Channel::with_max_frame(a, 100);
    match a.send(&Msg::Blob(vec![0; 200])) {
        Err(IpcError::TooLarge { len, max: 100 }) => assert!(len > 200),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn oversized_header_refused_before_payload_arrives() {
    let (a, b) = socketpair().expect("socketpair");
    let mut raw = UnixStream::from(a);
    let mut b = Channel::with_max_frame(b, 1024);
    // Announce 4 GiB - 1 and send only the header: the receiver must refuse at once
    // instead of waiting for (or allocating) the payload.
    raw.write_all(&[0xff, 0xff, 0xff, 0xff, 0]).expect("write");
    match b.recv::<Msg>() {
        Err(IpcError::TooLarge { len, max: 1024 }) => assert_eq!(len, u32::MAX as usize),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn truncated_frame_is_an_error() {
    let (a, b) = socketpair().expect("socketpair");
    let mut raw = UnixStream::from(a);
    let mut b = Channel::new(b);
    let frame = encode_frame(&Msg::Blob(vec![7; 50]), 0, DEFAULT_MAX_FRAME).expect("encode");
    raw.write_all(&frame[..20]).expect("write");
    drop(raw);
    match b.recv::<Msg>() {
        Err(IpcError::Truncated { have: 20, need }) => assert_eq!(need, frame.len()),
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn truncated_header_is_an_error_and_clean_eof_is_closed() {
    let (a, b) = socketpair().expect("socketpair");
    let mut raw = UnixStream::from(a);
    let mut b = Channel::new(b);
    raw.write_all(&[3, 0]).expect("write");
    drop(raw);
    assert!(matches!(
        b.recv::<Msg>(),
        Err(IpcError::Truncated { have: 2, need: 5 })
    ));

    let (a, b) = pair();
    drop(a);
    let mut b = b;
    assert!(matches!(b.recv::<Msg>(), Err(IpcError::Closed)));
}

#[test]
fn malformed_payload_is_a_decode_error() {
    let (a, b) = socketpair().expect("socketpair");
    let mut raw = UnixStream::from(a);
    let mut b = Channel::new(b);
    // Variant index 9 does not exist in `Msg`.
    raw.write_all(&[1, 0, 0, 0, 0, 9]).expect("write");
    assert!(matches!(b.recv::<Msg>(), Err(IpcError::Decode(_))));
    // Trailing garbage after a valid message is refused too.
    let (a, b) = socketpair().expect("socketpair");
    let mut raw = UnixStream::from(a);
    let mut b = Channel::new(b);
    raw.write_all(&[4, 0, 0, 0, 0, 2, 80, 20, 99])
        .expect("write");
    assert!(matches!(b.recv::<Msg>(), Err(IpcError::Decode(_))));
}

#[test]
fn frame_announcing_missing_descriptors_is_an_error() {
    let (a, b) = socketpair().expect("socketpair");
    let mut raw = UnixStream::from(a);
    let mut b = Channel::new(b);
    let mut frame = encode_frame(&Msg::Socket { port: 1 }, 0, DEFAULT_MAX_FRAME).expect("enc");
    frame[4] = 2;
    raw.write_all(&frame).expect("write");
    assert!(matches!(
        b.recv::<Msg>(),
        Err(IpcError::MissingFds {
            expected: 2,
            got: 0
        })
    ));
    frame[4] = 200;
    let (a, b) = socketpair().expect("socketpair");
    let mut raw = UnixStream::from(a);
    let mut b = Channel::new(b);
    raw.write_all(&frame).expect("write");
    assert!(matches!(b.recv::<Msg>(), Err(IpcError::TooManyFds(200))));
}

#[test]
fn udp_socket_passes_and_works_on_the_other_side() {
    let (a, mut b) = pair();
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sock.local_addr().expect("addr").port();
    // Two frames back to back, the first without descriptors, the second with one.
    a.send(&Msg::Hello {
        name: "x".into(),
        n: 1,
    })
    .expect("send");
    a.send_with_fds(&Msg::Socket { port }, &[sock.as_fd()])
        .expect("send fd");
    drop(sock);

    let (m, fds) = b.recv_with_fds::<Msg>().expect("recv");
    assert!(matches!(m, Msg::Hello { .. }));
    assert!(fds.is_empty());
    let (m, mut fds) = b.recv_with_fds::<Msg>().expect("recv");
    assert_eq!(m, Msg::Socket { port });
    assert_eq!(fds.len(), 1);
    let received = UdpSocket::from(fds.remove(0));
    assert_eq!(received.local_addr().expect("addr").port(), port);

    let peer = UdpSocket::bind("127.0.0.1:0").expect("bind");
    peer.send_to(b"ping", ("127.0.0.1", port)).expect("send_to");
    let mut buf = [0u8; 16];
    let (n, from) = received.recv_from(&mut buf).expect("recv_from");
    assert_eq!(&buf[..n], b"ping");
    received.send_to(b"pong", from).expect("reply");
    let (n, _) = peer.recv_from(&mut buf).expect("recv reply");
    assert_eq!(&buf[..n], b"pong");
}

#[tokio::test(flavor = "current_thread")]
async fn async_round_trip_with_fd_and_split() {
    let (a, b) = socketpair().expect("socketpair");
    let a = AsyncChannel::new(a).expect("async");
    let (tx, mut rx) = AsyncChannel::new(b).expect("async").into_split();
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sock.local_addr().expect("addr").port();
    a.send_with_fds(&Msg::Socket { port }, &[sock.as_fd()])
        .await
        .expect("send");
    let (m, fds) = rx.recv_with_fds::<Msg>().await.expect("recv");
    assert_eq!(m, Msg::Socket { port });
    assert_eq!(fds.len(), 1);
    // The blob is larger than the socket buffer: read it concurrently.
    let mut a = a;
    let blob = Msg::Blob(vec![1; 300_000]);
    let (s, r) = tokio::join!(tx.send(&blob), a.recv::<Msg>());
    s.expect("send blob");
    assert_eq!(r.expect("recv blob"), Msg::Blob(vec![1; 300_000]));
}

#[tokio::test(flavor = "current_thread")]
async fn async_large_frame_with_concurrent_reader() {
    let (a, b) = socketpair().expect("socketpair");
    let a = AsyncChannel::new(a).expect("async");
    let mut b = AsyncChannel::new(b).expect("async");
    let send = async { a.send(&Msg::Blob(vec![3; 900_000])).await };
    let recv = async { b.recv::<Msg>().await };
    let (s, r) = tokio::join!(send, recv);
    s.expect("send");
    assert_eq!(r.expect("recv"), Msg::Blob(vec![3; 900_000]));
}

#[tokio::test(flavor = "current_thread")]
async fn async_truncated_and_closed() {
    let (a, b) = socketpair().expect("socketpair");
    let mut raw = UnixStream::from(a);
    let mut b = AsyncChannel::new(b).expect("async");
    raw.write_all(&[10, 0, 0, 0, 0, 1, 2]).expect("write");
    drop(raw);
    assert!(matches!(
        b.recv::<Msg>().await,
        Err(IpcError::Truncated { have: 7, need: 15 })
    ));
}
