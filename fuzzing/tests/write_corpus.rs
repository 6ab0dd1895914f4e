//! Writes the seed corpora into `corpus/<target>/`:
//! `cargo test -p isakmp-fuzz --release -- --ignored write_corpus`.
//! Ignored in normal runs: the seeds are committed, and the test rewrites them.

use helpers::ipc::{encode_frame, DEFAULT_MAX_FRAME};
use ike::codec::*;
use ike::crypto::serve;
use ike::engine::{Engine, Event, KernelEvent, KernelRequest, Output, RequestId, SeededRng};
use isakmp_fuzz::responder::{connection_name, initiator_config, Op, Responder};
use privsep::proto::{ReportKind, ToParent};
use std::path::{Path, PathBuf};

fn dir(target: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&d).expect("create corpus dir");
    d
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    std::fs::write(dir(target).join(name), bytes).expect("write seed");
}

fn fifo_seeds() {
    let lines: &[&str] = &[
        "C set [Phase 1]:Retransmits=3 force",
        "C add [Phase 1]:Peers=peer-east",
        "C rmv [Phase 1]:Peers=peer-east",
        "C rm [General]:Check-interval",
        "C rms [peer-east]",
        "C get [General]:Retransmits",
        "c IPsec-east-west",
        "D 3 20",
        "D A 10",
        "D T",
        "d 0123456789abcdef0123456789ABCDEF 01020304",
        "d 0123456789abcdef0123456789abcdef -",
        "M active",
        "M passive",
        "p on",
        "p on=/var/run/isakmpd.pcap",
        "p off",
        "Q",
        "R",
        "r",
        "S",
        "T",
        "t main IPsec-east-west",
        "t quick IPsec-east-west",
        "t IPsec-east-west",
        "",
    ];
    for (i, line) in lines.iter().enumerate() {
        // First byte: where the target splits the rest into two chunks.
        let mut seed = vec![(i * 3 % 17) as u8];
        seed.extend_from_slice(line.as_bytes());
        seed.extend_from_slice(if i % 2 == 0 { b"\n" } else { b"\r\n" });
        write("fifo", &format!("line-{i:02}"), &seed);
    }
    let mut all = vec![40u8];
    for line in lines {
        all.extend_from_slice(line.as_bytes());
        all.push(b'\n');
    }
    all.extend_from_slice(b"c unterminated");
    write("fifo", "all-lines", &all);
}

fn conf_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for name in ["isakmpd.conf.example-east", "isakmpd.conf.example-west"] {
        let text = std::fs::read(root.join("etc").join(name)).expect("read example");
        write("conf", name, &text);
    }
    write(
        "conf",
        "small",
        b"[General]\nRetransmits=\t3\nListen-on=\t192.0.2.1\n\n[Phase 1]\n192.0.2.2=\tpeer\n\n\
[peer]\nPhase=\t1\nAddress=\t192.0.2.2\nAuthentication=\tsecret\nConfiguration=\tmm\n\n\
[mm]\nDOI=\tIPSEC\nEXCHANGE_TYPE=\tID_PROT\nTransforms=\t3DES-SHA\n\n\
[Phase 2]\nConnections=\tc\n\n[c]\nPhase=\t2\nISAKMP-peer=\tpeer\nConfiguration=\tqm\n\
Local-ID=\tnet-l\nRemote-ID=\tnet-r\n\n[net-l]\nID-type=\tIPV4_ADDR_SUBNET\nNetwork=\t10.1.0.0\n\
Netmask=\t255.255.0.0\n\n[net-r]\nID-type=\tIPV4_ADDR_SUBNET\nNetwork=\t10.2.0.0\n\
Netmask=\t255.255.0.0\n\n[qm]\nDOI=\tIPSEC\nEXCHANGE_TYPE=\tQUICK_MODE\nSuites=\tQM-ESP-AES-SHA-SUITE\n",
    );
    write(
        "conf",
        "continued",
        b"# comment\n[General]\nListen-on= 192.0.2.1,\\\n  192.0.2.3\n; other comment\n[x]\na=b\n",
    );
}

fn codec_seeds() {
    let header = |exchange, flags, message_id| Header {
        initiator_cookie: Cookie(*b"\x01\x02\x03\x04\x05\x06\x07\x08"),
        responder_cookie: Cookie([0; 8]),
        next_payload: PayloadType::NONE,
        version: 0x10,
        exchange,
        flags,
        message_id,
        length: 0,
    };
    let sa = Payload::Sa(SaPayload {
        doi: DOI_IPSEC,
        situation: SIT_IDENTITY_ONLY,
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::ISAKMP,
            spi: Vec::new(),
            transforms: vec![Transform {
                number: 1,
                transform_id: 1,
                attributes: vec![
                    Attribute::basic(1, 7),
                    Attribute::basic(14, 128),
                    Attribute::basic(2, 2),
                    Attribute::basic(3, 1),
                    Attribute::basic(4, 2),
                    Attribute::basic(11, 1),
                    Attribute::number(12, 86400),
                ],
            }],
        }],
    });
    let id = Payload::Id(IdPayload {
        protocol: 17,
        port: 500,
        identity: Identity::Ipv4("192.0.2.1".parse().expect("addr")),
    });
    let messages = [
        (header(ExchangeType::MAIN_MODE, 0, 0), vec![sa.clone()]),
        (
            header(ExchangeType::AGGRESSIVE, 0, 0),
            vec![
                sa,
                Payload::Ke(vec![7; 128]),
                Payload::Nonce(vec![9; 16]),
                id,
                Payload::VendorId(vec![0xaf; 16]),
                Payload::NatD {
                    hash: vec![1; 20],
                    draft: false,
                },
            ],
        ),
        (
            header(ExchangeType::INFORMATIONAL, 0, 0x01020304),
            vec![
                Payload::Notify(NotifyPayload {
                    doi: DOI_IPSEC,
                    protocol: ProtocolId::ISAKMP,
                    spi: vec![1; 16],
                    notify_type: NotifyType(14),
                    data: Vec::new(),
                }),
                Payload::Delete(DeletePayload {
                    doi: DOI_IPSEC,
                    protocol: ProtocolId::IPSEC_ESP,
                    spi_size: 4,
                    spis: vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]],
                }),
            ],
        ),
    ];
    for (i, (header, payloads)) in messages.into_iter().enumerate() {
        let bytes = Message { header, payloads }.emit().expect("emit seed");
        write("codec", &format!("built-{i}"), &bytes);
    }
}

/// An initiator at `SOURCES[i]` runs a real exchange (phase 1 and Quick Mode) against the
/// fuzz responder; every operation the responder sees is recorded. Returns the encoded
/// operations and the datagrams both ways.
fn record_exchange(i: usize) -> (Vec<u8>, Vec<Vec<u8>>, Vec<KernelRequest>) {
    let (cfg, store) = initiator_config(i);
    let mut r = Responder::new();
    r.kernel_requests = Some(Vec::new());
    let mut init = Engine::new(cfg, Box::new(SeededRng::new(1000 + i as u64)), r.now);
    let conn = connection_name(i);
    init.initiate(r.now, &conn).expect("initiate");
    let mut ops = Vec::new();
    let mut datagrams = Vec::new();
    let mut init_up = 0;
    let mut spi = 0x9000;
    let source = u8::try_from(i).expect("index");
    for _round in 0..50 {
        // The initiator's outputs: its crypto and kernel answered at once.
        let mut to_responder = Vec::new();
        while let Some(out) = init.poll_output() {
            match out {
                Output::Transmit(t) => to_responder.push(t.bytes),
                Output::Crypto { id, request } => {
                    let answer = serve(&request, &store);
                    init.handle_crypto(r.now, id, answer);
                }
                Output::Kernel { id, request } => match request {
                    KernelRequest::AllocSpi { .. } => {
                        spi += 1;
                        init.handle_kernel(r.now, KernelEvent::SpiAllocated { id, spi });
                    }
                    KernelRequest::AddSa(_) => {
                        init.handle_kernel(r.now, KernelEvent::Installed { id })
                    }
                    _ => {}
                },
                Output::Event(Event::Phase2Up { .. }) => init_up += 1,
                Output::Event(_) | Output::Packet { .. } => {}
            }
        }
        if to_responder.is_empty() && init_up > 0 && r.phase2_up > 0 {
            break;
        }
        let run = |r: &mut Responder, op: Op, ops: &mut Vec<u8>| {
            op.encode(ops);
            r.apply(&op);
            std::mem::take(&mut r.sent)
        };
        let mut back = Vec::new();
        for bytes in to_responder {
            datagrams.push(bytes.clone());
            back.extend(run(&mut r, Op::Datagram { source, bytes }, &mut ops));
            // Crypto answers may raise more requests (a derive after a keygen).
            for _ in 0..4 {
                back.extend(run(&mut r, Op::AnswerAll, &mut ops));
            }
        }
        for (from, to, bytes) in back {
            datagrams.push(bytes.clone());
            init.handle_datagram(r.now, to, from, &bytes);
        }
    }
    assert!(
        init_up > 0,
        "peer {i}: the initiator's Quick Mode did not complete"
    );
    assert!(
        r.phase2_up > 0,
        "peer {i}: the responder's Quick Mode did not complete"
    );
    r.check();
    // The transcript must replay: a fresh responder reaches Quick Mode from it alone.
    let mut again = Responder::new();
    for op in Op::decode(&ops) {
        again.apply(&op);
    }
    assert!(
        again.phase2_up > 0,
        "peer {i}: the recorded transcript does not replay"
    );
    (ops, datagrams, r.kernel_requests.unwrap_or_default())
}

fn frame(msg: &ToParent) -> Vec<u8> {
    encode_frame(msg, 0, DEFAULT_MAX_FRAME)
        .expect("encode")
        .to_vec()
}

/// The child's kernel requests of one real exchange, as frames: each alone, and all in a
/// row followed by the deletes of what they installed (so the table has them).
fn ipc_seeds(name: &str, requests: Vec<KernelRequest>) {
    let mut all = Vec::new();
    let mut deletes = Vec::new();
    for (n, request) in requests.into_iter().enumerate() {
        match &request {
            KernelRequest::AddSa(sa) => deletes.push(KernelRequest::DeleteSa {
                protocol: sa.protocol,
                spi: sa.spi,
                src: sa.src,
                dst: sa.dst,
            }),
            KernelRequest::AddPolicy(p) => deletes.push(KernelRequest::DeletePolicy(p.clone())),
            _ => {}
        }
        let f = frame(&ToParent::Kernel {
            id: RequestId(n as u64),
            request: Box::new(request),
        });
        write("ipc", &format!("{name}-{n}"), &f);
        all.extend(f);
    }
    for (n, request) in deletes.into_iter().enumerate() {
        all.extend(frame(&ToParent::Kernel {
            id: RequestId(100 + n as u64),
            request: Box::new(request),
        }));
    }
    write("ipc", &format!("{name}-all"), &all);
}

fn other_ipc_seeds() {
    let messages = [
        ToParent::Ready,
        ToParent::NewHelper,
        ToParent::Report {
            kind: ReportKind::State,
            text: "report".into(),
        },
        ToParent::Report {
            kind: ReportKind::Sas,
            text: String::new(),
        },
        ToParent::Packet {
            from: "192.0.2.1:500".parse().expect("addr"),
            to: "[2001:db8::1]:4500".parse().expect("addr"),
            bytes: vec![1, 2, 3],
        },
    ];
    for (n, m) in messages.iter().enumerate() {
        write("ipc", &format!("other-{n}"), &frame(m));
    }
}

/// One x509 input: selector, identity, certificate file.
fn x509_input(selector: u8, identity: &[u8], file: &[u8]) -> Vec<u8> {
    let mut v = vec![selector];
    v.extend_from_slice(&(identity.len() as u16).to_be_bytes());
    v.extend_from_slice(identity);
    v.extend_from_slice(file);
    v
}

/// A CA, a CRL revoking one of its certificates, and certificates with each kind of
/// identity; the material goes to keys/ for the target, the rest to the corpus.
fn x509_seeds() {
    use ike_test_support::pki::{rsa_key, Ca, San};
    let mut ca = Ca::new(&[("C", "XX"), ("O", "Fuzz"), ("CN", "Fuzz CA")]).expect("ca");
    let mut inter = Ca::new(&[("O", "Fuzz"), ("CN", "Fuzz Intermediate")]).expect("ca");
    let key = rsa_key(1024).expect("key");
    let sans = [
        San::Dns("east.example.org".into()),
        San::Email("ike@example.org".into()),
        San::Ip("192.0.2.1".parse().expect("addr")),
        San::Ip("2001:db8::1".parse().expect("addr")),
    ];
    let leaf = ca
        .issue(&[("C", "XX"), ("O", "Fuzz"), ("CN", "east")], &sans, &key)
        .expect("leaf");
    let revoked = ca
        .issue(&[("O", "Fuzz"), ("CN", "revoked")], &sans[..1], &key)
        .expect("revoked");
    let held = ca.issue(&[("CN", "held")], &[], &key).expect("held");
    let other = inter
        .issue(&[("CN", "stranger")], &sans[2..3], &key)
        .expect("other");
    let crl = ca.crl(&[&revoked]).expect("crl");
    let der = |c: &openssl::x509::X509| c.to_der().expect("der");
    let pem = |c: &openssl::x509::X509| c.to_pem().expect("pem");
    let material = ike::x509::Material {
        cas: vec![der(&ca.cert)],
        crls: vec![crl.clone()],
        own: Vec::new(),
        others: vec![der(&held)],
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys/x509-material.postcard");
    std::fs::write(path, postcard::to_allocvec(&material).expect("encode")).expect("write");

    let subject = leaf.subject_name().to_der().expect("dn");
    let chain_pem = [pem(&leaf), pem(&ca.cert)].concat();
    let ok = ike::x509::verify_peer(
        &der(&leaf),
        &[],
        &Identity::DerAsn1Dn(subject.clone()),
        &material,
        None,
    );
    assert!(ok.is_ok(), "the leaf seed does not verify: {ok:?}");
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("leaf-dn", x509_input(0, &subject, &der(&leaf))),
        (
            "leaf-dn-text",
            x509_input(0x80, b"C=XX, O=Fuzz, CN=east", &pem(&leaf)),
        ),
        ("leaf-fqdn", x509_input(1, b"east.example.org", &chain_pem)),
        ("leaf-email", x509_input(2, b"ike@example.org", &pem(&leaf))),
        ("leaf-ipv4", x509_input(3, &[192, 0, 2, 1], &der(&leaf))),
        (
            "leaf-ipv6",
            x509_input(
                4,
                &"2001:db8::1"
                    .parse::<std::net::Ipv6Addr>()
                    .expect("a")
                    .octets(),
                &der(&leaf),
            ),
        ),
        ("leaf-keyid", x509_input(5, b"key", &der(&leaf))),
        (
            "revoked",
            x509_input(1, b"east.example.org", &der(&revoked)),
        ),
        (
            "held",
            x509_input(0, &held.subject_name().to_der().expect("dn"), &pem(&held)),
        ),
        (
            "other-ca",
            x509_input(
                3,
                &[192, 0, 2, 1],
                &[pem(&other), pem(&inter.cert)].concat(),
            ),
        ),
        ("crl", x509_input(0, &[], &crl)),
    ];
    for (name, bytes) in seeds {
        write("x509", name, &bytes);
    }
}

fn responder_seeds() {
    let names = ["psk-main", "psk-aggressive", "rsa-main", "rsa-aggressive"];
    for (i, name) in names.iter().enumerate() {
        let (ops, datagrams, kernel) = record_exchange(i);
        ipc_seeds(name, kernel);
        write("responder", name, &ops);
        for (n, d) in datagrams.iter().enumerate() {
            write("codec", &format!("{name}-{n}"), d);
        }
        // The first message alone, from the stranger and on the NAT-T port.
        if let Some(first) = datagrams.first() {
            let mut seed = Vec::new();
            Op::Datagram {
                source: 4,
                bytes: first.clone(),
            }
            .encode(&mut seed);
            write("responder", &format!("{name}-stranger"), &seed);
        }
    }
}

#[test]
#[ignore]
fn write_corpus() {
    fifo_seeds();
    conf_seeds();
    codec_seeds();
    responder_seeds();
    other_ipc_seeds();
    x509_seeds();
}
