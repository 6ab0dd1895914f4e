//! X.509 handling as the engine does it for a peer's CERT payloads and the daemon for its
//! certificate files: reading PEM or DER files (`certs_from_file`, `crl_from_file`), the
//! accessors, identities, DN text both ways, and `verify_peer` of the certificates read
//! (the first as the leaf, the rest as the chain) against a fixed CA and CRL.
//!
//! Input: a selector byte (identity type, `% 6`; bit 7: a DN identity is given as text and
//! parsed with `parse_dn`), a 2-byte big-endian length and that many bytes of identity, then
//! the certificate file. The material (`keys/x509-material.postcard`: CA, CRL, a held
//! certificate) and the seeds are written together by `tests/write_corpus.rs`.

use ike::codec::Identity;
use ike::x509::{
    as_in_certificate, certs_from_file, crl_from_file, default_identity, dn_to_string, parse_dn,
    public_key_of, subject_of, verify_peer, Material,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

const MATERIAL: &[u8] = include_bytes!("../keys/x509-material.postcard");

/// The CA, CRL and held certificate the peers' certificates are checked against.
pub fn material() -> &'static Material {
    static M: OnceLock<Material> = OnceLock::new();
    M.get_or_init(|| postcard::from_bytes(MATERIAL).unwrap_or_default())
}

fn identity(selector: u8, bytes: &[u8]) -> Option<Identity> {
    let v = bytes.to_vec();
    Some(match selector % 6 {
        0 if selector & 0x80 != 0 => {
            Identity::DerAsn1Dn(parse_dn(std::str::from_utf8(bytes).ok()?).ok()?)
        }
        0 => Identity::DerAsn1Dn(v),
        1 => Identity::Fqdn(v),
        2 => Identity::UserFqdn(v),
        3 => Identity::Ipv4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes.get(..4)?).ok()?)),
        4 => Identity::Ipv6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes.get(..16)?).ok()?)),
        _ => Identity::KeyId(v),
    })
}

pub fn x509(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Some((len, rest)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (id_bytes, file) = rest.split_at(len);
    let _ = dn_to_string(id_bytes);
    let id = identity(selector, id_bytes);
    let _ = crl_from_file(file);
    let Ok(certs) = certs_from_file(file) else {
        return;
    };
    let addr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    for c in &certs {
        let _ = subject_of(c);
        let _ = public_key_of(c);
        let _ = default_identity(c, addr);
        if let Some(id) = &id {
            let _ = as_in_certificate(c, id.clone());
        }
    }
    let m = material();
    let _ = m.own_certificate(id.as_ref());
    if let Some(id) = &id {
        let _ = m.held_for(id);
    }
    if let (Some((leaf, chain)), Some(id)) = (certs.split_first(), &id) {
        let chain: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
        let _ = verify_peer(leaf, &chain, id, m, None);
    }
}
