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
    assert!(matches!(
        b.recv::<Msg>(),
        Err(IpcError::TooManyFds {
            got: 200,
            max: MAX_FDS
        })
    ));
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

/// A pipe: (read end, write end), close-on-exec so that no process another test starts
/// keeps a copy of the read end.
fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe")
}

/// Whether the pipe's read end is closed everywhere: a write then fails with EPIPE (the
/// test harness ignores SIGPIPE, as every Rust program does).
fn readers_gone(w: &OwnedFd) -> bool {
    matches!(nix::unistd::write(w, b"x"), Err(Errno::EPIPE))
}

/// Send `frame` (hand-built, header included) in one sendmsg with `fds` as SCM_RIGHTS.
fn send_raw_with_fds(sock: &OwnedFd, frame: &[u8], fds: &[RawFd]) {
    let n = send_some(sock.as_raw_fd(), frame, 0, fds).expect("sendmsg");
    assert_eq!(n, frame.len());
}

#[test]
fn descriptors_no_frame_announces_are_closed_and_the_frame_refused() {
    let (a, b) = socketpair().expect("socketpair");
    let mut b = Channel::new(b);
    let (r1, w1) = pipe();
    let (r2, w2) = pipe();
    // Announces 0 descriptors, carries 2.
    let frame = encode_frame(&Msg::Socket { port: 1 }, 0, DEFAULT_MAX_FRAME).expect("enc");
    send_raw_with_fds(&a, &frame, &[r1.as_raw_fd(), r2.as_raw_fd()]);
    drop((r1, r2));
    assert!(!readers_gone(&w1), "the receiver's copy is still queued");
    match b.recv::<Msg>() {
        Err(e @ IpcError::UnexpectedFds { got: 2 }) => {
            assert!(e.to_string().contains("2 descriptors"), "{e}")
        }
        other => panic!("expected UnexpectedFds, got {other:?}"),
    }
    assert!(
        readers_gone(&w1) && readers_gone(&w2),
        "descriptors kept open"
    );
    // The frame is refused, and nothing more is delivered: which frame a descriptor
    // belongs to can no longer be told.
    let good = encode_frame(&Msg::Socket { port: 2 }, 0, DEFAULT_MAX_FRAME).expect("enc");
    send_raw_with_fds(&a, &good, &[]);
    assert!(matches!(
        b.recv::<Msg>(),
        Err(IpcError::UnexpectedFds { got: 2 })
    ));
    assert!(
        b.reader.buf.iter().all(|&x| x == 0),
        "refused frame left behind"
    );
}

#[test]
fn a_frame_carrying_more_than_it_announces_closes_them_all() {
    let (a, b) = socketpair().expect("socketpair");
    let mut b = Channel::new(b);
    let (r1, w1) = pipe();
    let (r2, w2) = pipe();
    // Announces 1, carries 2; and the frame after it (in the same read) announces none.
    let mut two = encode_frame(&Msg::Socket { port: 1 }, 1, DEFAULT_MAX_FRAME)
        .expect("enc")
        .to_vec();
    two.extend_from_slice(
        &encode_frame(&Msg::Socket { port: 2 }, 0, DEFAULT_MAX_FRAME).expect("enc"),
    );
    send_raw_with_fds(&a, &two, &[r1.as_raw_fd(), r2.as_raw_fd()]);
    drop((r1, r2));
    assert!(matches!(
        b.recv::<Msg>(),
        Err(IpcError::UnexpectedFds { got: 1 })
    ));
    // The one it announced went with the surplus, and the frames with them.
    assert!(readers_gone(&w1) && readers_gone(&w2));
    assert!(matches!(
        b.recv::<Msg>(),
        Err(IpcError::UnexpectedFds { got: 1 })
    ));
}

#[test]
fn a_descriptor_that_arrives_before_its_header_is_complete_is_kept() {
    let (a, b) = socketpair().expect("socketpair");
    let mut b = Channel::new(b);
    let (r, w) = pipe();
    let frame = encode_frame(&Msg::Socket { port: 7 }, 1, DEFAULT_MAX_FRAME).expect("enc");
    // The descriptor comes with the first two bytes; the rest of the header later.
    send_raw_with_fds(&a, &frame[..2], &[r.as_raw_fd()]);
    drop(r);
    b.reader.fill(b.fd.as_raw_fd()).expect("fill");
    assert_eq!(b.reader.fds.len(), 1);
    send_raw_with_fds(&a, &frame[2..], &[]);
    let (m, fds) = b.recv_with_fds::<Msg>().expect("recv");
    assert_eq!((m, fds.len()), (Msg::Socket { port: 7 }, 1));
    assert!(!readers_gone(&w));
    drop(fds);
    assert!(readers_gone(&w));
}

#[test]
fn a_channel_without_descriptors_refuses_every_one() {
    let (a, b) = socketpair().expect("socketpair");
    let a = Channel::new(a);
    let mut b = Channel::with_limits(b, DEFAULT_MAX_FRAME, 0);
    let (r, w) = pipe();
    a.send_with_fds(&Msg::Socket { port: 1 }, &[r.as_fd()])
        .expect("send");
    drop(r);
    assert!(matches!(
        b.recv::<Msg>(),
        Err(IpcError::UnexpectedFds { got: 1 })
    ));
    assert!(readers_gone(&w), "closed as soon as it arrived");
    // The frame announcing it is refused with it.
    assert!(matches!(
        b.recv::<Msg>(),
        Err(IpcError::UnexpectedFds { got: 1 })
    ));

    // A frame announcing one without sending it is refused all the same.
    let (a, b) = socketpair().expect("socketpair");
    let mut b = Channel::with_limits(b, DEFAULT_MAX_FRAME, 0);
    let mut frame = encode_frame(&Msg::Socket { port: 1 }, 0, DEFAULT_MAX_FRAME).expect("enc");
    frame[4] = 1;
    send_raw_with_fds(&a, &frame, &[]);
    match b.recv::<Msg>() {
        Err(e @ IpcError::TooManyFds { got: 1, max: 0 }) => {
            assert!(e.to_string().contains("limit of 0"), "{e}")
        }
        other => panic!("expected TooManyFds, got {other:?}"),
    }
    // Frames without descriptors pass.
    let (a, b) = socketpair().expect("socketpair");
    let a = Channel::new(a);
    let mut b = Channel::with_limits(b, DEFAULT_MAX_FRAME, 0);
    a.send(&Msg::Socket { port: 3 }).expect("send");
    assert_eq!(b.recv::<Msg>().expect("recv"), Msg::Socket { port: 3 });
}

#[test]
fn a_frame_over_the_channels_descriptor_limit_is_refused() {
    let (a, b) = socketpair().expect("socketpair");
    let a = Channel::new(a);
    let mut b = Channel::with_limits(b, DEFAULT_MAX_FRAME, 1);
    let (r1, w1) = pipe();
    let (r2, w2) = pipe();
    a.send_with_fds(&Msg::Socket { port: 1 }, &[r1.as_fd(), r2.as_fd()])
        .expect("send");
    drop((r1, r2));
    assert!(matches!(
        b.recv::<Msg>(),
        Err(IpcError::UnexpectedFds { got: 2 })
    ));
    assert!(readers_gone(&w1) && readers_gone(&w2));
}

#[test]
fn several_frames_with_descriptors_in_one_read_keep_theirs() {
    let (a, b) = socketpair().expect("socketpair");
    let a = Channel::new(a);
    let (r, w) = pipe();
    let mut socks = Vec::new();
    for _ in 0..3 {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = s.local_addr().expect("addr").port();
        a.send_with_fds(&Msg::Socket { port }, &[s.as_fd()])
            .expect("send");
        socks.push(port);
    }
    a.send_with_fds(&Msg::Socket { port: 0 }, &[r.as_fd(), w.as_fd()])
        .expect("send");
    // Everything is queued in the socket before the first read.
    let mut b = Channel::with_limits(b, DEFAULT_MAX_FRAME, 2);
    for port in socks {
        let (m, mut fds) = b.recv_with_fds::<Msg>().expect("recv");
        assert_eq!(m, Msg::Socket { port });
        assert_eq!(fds.len(), 1);
        let s = UdpSocket::from(fds.remove(0));
        assert_eq!(s.local_addr().expect("addr").port(), port);
    }
    let (m, fds) = b.recv_with_fds::<Msg>().expect("recv");
    assert_eq!((m, fds.len()), (Msg::Socket { port: 0 }, 2));
}

#[tokio::test(flavor = "current_thread")]
async fn async_channel_with_limits_refuses_descriptors() {
    let (a, b) = socketpair().expect("socketpair");
    let a = Channel::new(a);
    let mut b = AsyncChannel::with_limits(b, DEFAULT_MAX_FRAME, 0).expect("async");
    let (r, w) = pipe();
    a.send_with_fds(&Msg::Socket { port: 1 }, &[r.as_fd()])
        .expect("send");
    drop(r);
    assert!(matches!(
        b.recv::<Msg>().await,
        Err(IpcError::UnexpectedFds { got: 1 })
    ));
    assert!(readers_gone(&w));
}

#[test]
fn consumed_frames_are_wiped_from_the_receive_buffer() {
    let (a, b) = socketpair().expect("socketpair");
    let mut raw = UnixStream::from(a);
    let mut b = Channel::new(b);
    let first = encode_frame(&Msg::Blob(vec![0xa5; 100]), 0, DEFAULT_MAX_FRAME).expect("enc");
    let second = encode_frame(&Msg::Blob(vec![0x5a; 100]), 0, DEFAULT_MAX_FRAME).expect("enc");
    // Both frames and half of a third in one write, so one read brings them all.
    let mut bytes = first.to_vec();
    bytes.extend_from_slice(&second);
    bytes.extend_from_slice(&first[..50]);
    raw.write_all(&bytes).expect("write");
    assert_eq!(b.recv::<Msg>().expect("recv"), Msg::Blob(vec![0xa5; 100]));
    let r = &b.reader;
    assert_eq!(r.start, first.len());
    assert!(
        r.buf[..r.start].iter().all(|&x| x == 0),
        "first frame left behind"
    );
    assert_eq!(&r.buf[r.start..], &bytes[first.len()..]);
    assert_eq!(b.recv::<Msg>().expect("recv"), Msg::Blob(vec![0x5a; 100]));
    // The rest of the third frame arrives: the partial one moves to the front first.
    let len_before = b.reader.buf.len();
    raw.write_all(&first[50..]).expect("write");
    b.reader.fill(b.fd.as_raw_fd()).expect("fill");
    let r = &b.reader;
    assert_eq!((r.start, r.buf.len()), (0, first.len()));
    assert!(len_before > first.len());
    assert_eq!(b.recv::<Msg>().expect("recv"), Msg::Blob(vec![0xa5; 100]));
    assert!(b.reader.buf.is_empty());
}

#[test]
fn encoded_frames_are_exactly_sized() {
    let frame = encode_frame(&Msg::Blob(vec![1; 1000]), 0, DEFAULT_MAX_FRAME).expect("enc");
    assert_eq!(frame.capacity(), frame.len());
    assert_eq!(
        decode_payload::<Msg>(&frame[HEADER_LEN..]).expect("dec"),
        Msg::Blob(vec![1; 1000])
    );
}
