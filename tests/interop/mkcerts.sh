#!/usr/bin/env bash
# A throw-away PKI for the X.509 interop scenarios, made with the openssl command line only.
#
#   tests/interop/mkcerts.sh DIR [NAME...]      (default names: ours peer)
#
# Writes into DIR (created; an existing complete set is kept, `rm -r DIR` to renew):
#   ca.pem ca.key              the test CA (RSA 2048, CA:TRUE, keyCertSign + cRLSign)
#   NAME.pem NAME.key          one end-entity certificate per NAME, subject
#                              "C=ZZ, O=isakmpd interop, CN=NAME.fz.test", SAN DNS:NAME.fz.test
#                              (plus IP:ADDR when IP_<NAME>=ADDR is set), keys PKCS#8 PEM
#   NAME.der                   the same certificate in DER
#   revoked.pem revoked.key    a certificate the CA has revoked (CN=revoked.fz.test)
#   crl.pem crl.der            the CA's CRL, listing revoked.pem (valid 30 days)
#   ca/                        the CA's openssl database (index.txt, serial, crlnumber)
# Checks its own work: each NAME verifies against the CA with the CRL, revoked.pem does not.
set -euo pipefail
DIR=${1:?usage: mkcerts.sh DIR [NAME...]}; shift
NAMES=("$@"); [ ${#NAMES[@]} -gt 0 ] || NAMES=(ours peer)
mkdir -p "$DIR/ca"; cd "$DIR"
complete=yes
for f in ca.pem crl.pem revoked.pem "${NAMES[@]/%/.pem}"; do [ -f "$f" ] || complete=no; done
if [ $complete = no ]; then
  rm -rf ca ./*.pem ./*.key ./*.der; mkdir ca
  : > ca/index.txt; echo 1000 > ca/serial; echo 1000 > ca/crlnumber
  cat > ca/openssl.cnf <<CNF
[ ca ]
default_ca = fz
[ fz ]
dir = $PWD/ca
database = \$dir/index.txt
serial = \$dir/serial
crlnumber = \$dir/crlnumber
new_certs_dir = \$dir
certificate = $PWD/ca.pem
private_key = $PWD/ca.key
default_md = sha256
default_days = 3650
default_crl_days = 30
policy = any
unique_subject = no
copy_extensions = copy
[ any ]
countryName = optional
organizationName = optional
commonName = supplied
[ leaf ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
  openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out ca.key
  openssl req -x509 -new -key ca.key -days 3650 -sha256 -subj "/C=ZZ/O=isakmpd interop/CN=isakmpd interop CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" -out ca.pem
  leaf() { # name
    local n=$1 ipvar="IP_$1" san="DNS:$1.fz.test"
    [ -n "${!ipvar:-}" ] && san="$san,IP:${!ipvar}"
    openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$n.key"
    openssl req -new -key "$n.key" -subj "/C=ZZ/O=isakmpd interop/CN=$n.fz.test" \
      -addext "subjectAltName=$san" -out "ca/$n.csr"
    openssl ca -batch -notext -config ca/openssl.cnf -extensions leaf -in "ca/$n.csr" -out "$n.pem" 2>/dev/null
    openssl x509 -in "$n.pem" -outform DER -out "$n.der"
  }
  for n in "${NAMES[@]}" revoked; do leaf "$n"; done
  openssl ca -batch -config ca/openssl.cnf -revoke revoked.pem -crl_reason keyCompromise 2>/dev/null
  openssl ca -batch -config ca/openssl.cnf -gencrl -out crl.pem 2>/dev/null
  openssl crl -in crl.pem -outform DER -out crl.der
fi
for n in "${NAMES[@]}"; do
  openssl verify -crl_check -CAfile ca.pem -CRLfile crl.pem "$n.pem" >/dev/null
done
if openssl verify -crl_check -CAfile ca.pem -CRLfile crl.pem revoked.pem >/dev/null 2>&1; then
  echo "mkcerts.sh: revoked.pem verifies despite the CRL" >&2; exit 1
fi
for n in "${NAMES[@]}" revoked; do
  echo "$DIR/$n.pem: $(openssl x509 -in "$n.pem" -noout -subject -nameopt RFC2253)"
done
echo "$DIR/crl.pem: revokes $(openssl crl -in crl.pem -noout -text | grep -c 'Serial Number') certificate(s)"
