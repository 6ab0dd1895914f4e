//! The packet log of `-L`, `-l file` and the FIFO command `p on[=path]` / `p off`.
//!
//! isakmpd(8) writes "an unencrypted copy of the negotiation packets it is sending and
//! receiving" into a pcap(3) file, so that tcpdump or tshark can read a negotiation even
//! though most of it travels encrypted. [`PcapWriter`] writes such a file: each IKE message
//! becomes one record holding a synthesised IPv4 or IPv6 header, a UDP header and the
//! message. The link type is LINKTYPE_RAW, so a record is a bare IP packet with no link
//! layer to invent.
//!
//! Messages must be given as the daemon saw them in cleartext: an encrypted message is
//! logged after decryption with [`decrypted_view`], which clears the encryption flag so that
//! dissectors parse the payloads instead of showing ciphertext.
//!
//! All multi-byte fields of the pcap headers are written little-endian (the magic number
//! tells readers the byte order), so a file's bytes do not depend on the host. IP and UDP
//! headers are in network byte order, with correct IPv4 header checksums and UDP checksums.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use ike::codec::{flags, HEADER_LEN};

/// Magic number of the classic pcap format with microsecond timestamps.
pub const PCAP_MAGIC: u32 = 0xa1b2_c3d4;
/// Format version 2.4.
pub const PCAP_VERSION: (u16, u16) = (2, 4);
/// LINKTYPE_RAW: records are IPv4 or IPv6 packets, told apart by their version nibble.
pub const LINKTYPE_RAW: u32 = 101;
/// Largest number of bytes of one packet stored in a record; longer packets are cut.
pub const SNAPLEN: u32 = 65535;
/// Size of the pcap global header at the start of the file.
pub const GLOBAL_HEADER_LEN: usize = 24;
/// Size of the header in front of each record.
pub const RECORD_HEADER_LEN: usize = 16;
/// The IKE NAT-Traversal port (RFC 3947). IKE messages to or from it carry a four-byte
/// zero non-ESP marker in front, which the daemon strips before handing a message on.
pub const NATT_PORT: u16 = 4500;
/// The non-ESP marker (RFC 3948 2.2).
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
const UDP_HEADER_LEN: usize = 8;
const IPPROTO_UDP: u8 = 17;
const TTL: u8 = 64;

/// Writes a pcap capture of IKE messages to `W` (the daemon's packet-log file).
///
/// Every record is written with a single `write_all` followed by a `flush`, so a capture
/// read while the daemon runs holds whole records only (up to the last one being written),
/// even when `W` is buffered.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
    natt_port: u16,
    ip_id: u16,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header (magic 0xa1b2c3d4, version 2.4, snaplen 65535,
    /// LINKTYPE_RAW) to `out` and returns a writer ready for [`record`](Self::record).
    pub fn new(out: W) -> io::Result<Self> {
        Self::with_snaplen(out, SNAPLEN)
    }

    /// Like [`new`](Self::new) with another snapshot length: packets longer than `snaplen`
    /// are stored cut to `snaplen` bytes. A `snaplen` of 0 is refused (InvalidInput).
    pub fn with_snaplen(mut out: W, snaplen: u32) -> io::Result<Self> {
        if snaplen == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "pcap snapshot length must not be 0",
            ));
        }
        let mut h = Vec::with_capacity(GLOBAL_HEADER_LEN);
        h.extend_from_slice(&PCAP_MAGIC.to_le_bytes());
        h.extend_from_slice(&PCAP_VERSION.0.to_le_bytes());
        h.extend_from_slice(&PCAP_VERSION.1.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone: timestamps are UTC
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&snaplen.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        out.write_all(&h)?;
        out.flush()?;
        Ok(Self {
            out,
            snaplen,
            natt_port: NATT_PORT,
            ip_id: 0,
        })
    }

    /// Sets the port whose messages get the non-ESP marker written back in front (the
    /// daemon's `-N` port; 4500 by default). Dissectors recognise IKE-over-NAT-T by port
    /// 4500 only, so another port is decoded as IKE only when configured in the reader.
    pub fn set_natt_port(&mut self, port: u16) {
        self.natt_port = port;
    }

    /// The snapshot length written in the global header.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// Writes one record: the IKE message `ike` as a UDP datagram from `src` to `dst`, seen
    /// at `ts`. When either port is the NAT-T port the four-byte non-ESP marker is put back
    /// in front of `ike`.
    ///
    /// Errors (nothing is written then): `src` and `dst` of different address families, or a
    /// datagram too long for the UDP (or IPv4) length field, give InvalidInput; a failed
    /// write is returned as is. A time before 1970 is written as 0, one after 2106 as the
    /// largest representable second.
    pub fn record(
        &mut self,
        ts: SystemTime,
        src: SocketAddr,
        dst: SocketAddr,
        ike: &[u8],
    ) -> io::Result<()> {
        let marker: &[u8] = if src.port() == self.natt_port || dst.port() == self.natt_port {
            &NON_ESP_MARKER
        } else {
            &[]
        };
        let udp_len = UDP_HEADER_LEN + marker.len() + ike.len();
        let udp_len16 = u16::try_from(udp_len).map_err(|_| too_long(udp_len))?;

        let mut packet = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let total = IPV4_HEADER_LEN + udp_len;
                let total16 = u16::try_from(total).map_err(|_| too_long(total))?;
                let mut p = Vec::with_capacity(total);
                self.ip_id = self.ip_id.wrapping_add(1);
                ipv4_header(&mut p, s, d, total16, self.ip_id);
                p
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let mut p = Vec::with_capacity(IPV6_HEADER_LEN + udp_len);
                ipv6_header(&mut p, s, d, udp_len16);
                p
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("packet log: address families differ ({src} -> {dst})"),
                ))
            }
        };

        let udp_start = packet.len();
        packet.extend_from_slice(&src.port().to_be_bytes());
        packet.extend_from_slice(&dst.port().to_be_bytes());
        packet.extend_from_slice(&udp_len16.to_be_bytes());
        packet.extend_from_slice(&[0, 0]); // checksum, filled in below
        packet.extend_from_slice(marker);
        packet.extend_from_slice(ike);
        let sum = udp_checksum(src.ip(), dst.ip(), &packet[udp_start..]);
        packet[udp_start + 6..udp_start + 8].copy_from_slice(&sum.to_be_bytes());

        let (secs, micros) = timestamp(ts);
        let len = packet.len();
        // `len` is at most 40 + 65535, far below u32::MAX.
        let len32 = u32::try_from(len).map_err(|_| too_long(len))?;
        let caplen32 = len32.min(self.snaplen);
        // caplen32 <= len32 == len, so it fits usize.
        let caplen = len.min(caplen32 as usize);

        let mut rec = Vec::with_capacity(RECORD_HEADER_LEN + caplen);
        rec.extend_from_slice(&secs.to_le_bytes());
        rec.extend_from_slice(&micros.to_le_bytes());
        rec.extend_from_slice(&caplen32.to_le_bytes());
        rec.extend_from_slice(&len32.to_le_bytes());
        rec.extend_from_slice(&packet[..caplen]);
        self.out.write_all(&rec)?;
        self.out.flush()
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Gives the underlying writer back (for `p off`: the caller closes the file).
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Rebuilds the cleartext form of an encrypted ISAKMP message for the packet log: the
/// message's original 28-byte `header` followed by `plaintext_body`, the decrypted payload
/// chain. The copy of the header has the encryption flag (byte 19, bit 0x01) cleared and its
/// length field (bytes 24..28, big-endian) set to 28 + `plaintext_body.len()`; every other
/// field (cookies, next payload, exchange type, other flags, message ID) is kept.
///
/// This is what isakmpd's log contains, and what the engine is to call after decrypting a
/// message it received or before encrypting one it sends, handing the result to
/// [`PcapWriter::record`]. The body is taken as given, padding included if the caller
/// leaves it in; dissectors show trailing padding as extra data. A length beyond u32::MAX
/// (impossible over UDP) is written as u32::MAX.
pub fn decrypted_view(header: &[u8; HEADER_LEN], plaintext_body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext_body.len());
    out.extend_from_slice(header);
    out[FLAGS_OFFSET] &= !flags::ENCRYPTION;
    let length = u32::try_from(HEADER_LEN + plaintext_body.len()).unwrap_or(u32::MAX);
    out[LENGTH_OFFSET..HEADER_LEN].copy_from_slice(&length.to_be_bytes());
    out.extend_from_slice(plaintext_body);
    out
}

/// Offset of the flags byte in the ISAKMP header.
const FLAGS_OFFSET: usize = 19;
/// Offset of the 4-byte message length in the ISAKMP header.
const LENGTH_OFFSET: usize = 24;

fn too_long(len: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("packet log: datagram of {len} bytes does not fit an IP/UDP length field"),
    )
}

fn timestamp(ts: SystemTime) -> (u32, u32) {
    match ts.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            u32::try_from(d.as_secs()).unwrap_or(u32::MAX),
            d.subsec_micros(),
        ),
        Err(_) => (0, 0),
    }
}

fn ipv4_header(p: &mut Vec<u8>, src: Ipv4Addr, dst: Ipv4Addr, total: u16, id: u16) {
    let start = p.len();
    p.push(0x45); // version 4, IHL 5 words
    p.push(0); // DSCP/ECN
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0, 0]); // flags, fragment offset
    p.push(TTL);
    p.push(IPPROTO_UDP);
    p.extend_from_slice(&[0, 0]); // header checksum, filled in below
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let sum = !fold(sum_words(0, &p[start..]));
    p[start + 10..start + 12].copy_from_slice(&sum.to_be_bytes());
}

fn ipv6_header(p: &mut Vec<u8>, src: Ipv6Addr, dst: Ipv6Addr, payload_len: u16) {
    p.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, traffic class 0, flow label 0
    p.extend_from_slice(&payload_len.to_be_bytes());
    p.push(IPPROTO_UDP);
    p.push(TTL); // hop limit
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
}

/// The UDP checksum (RFC 768, RFC 8200 8.1) of `udp` (header with a zero checksum field,
/// then data) between `src` and `dst`. A computed 0 is sent as 0xffff, 0 meaning "none".
fn udp_checksum(src: IpAddr, dst: IpAddr, udp: &[u8]) -> u16 {
    // `udp.len()` was checked to fit 16 bits by the caller.
    let len = udp.len() as u32;
    let mut acc = 0u64;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            acc = sum_words(acc, &s.octets());
            acc = sum_words(acc, &d.octets());
            acc += u64::from(IPPROTO_UDP);
            acc += u64::from(len);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            acc = sum_words(acc, &s.octets());
            acc = sum_words(acc, &d.octets());
            acc = sum_words(acc, &len.to_be_bytes());
            acc += u64::from(IPPROTO_UDP);
        }
        _ => {}
    }
    acc = sum_words(acc, udp);
    match !fold(acc) {
        0 => 0xffff,
        sum => sum,
    }
}

/// Adds the big-endian 16-bit words of `data` to `acc` (an odd last byte padded with 0).
fn sum_words(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a sum of 16-bit words into their one's-complement sum.
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}
