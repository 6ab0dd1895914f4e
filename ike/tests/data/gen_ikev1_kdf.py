import hmac, hashlib, random
H={'SHA-1':hashlib.sha1,'SHA-256':hashlib.sha256,'SHA-384':hashlib.sha384,'SHA-512':hashlib.sha512}
def prf(h,k,d): return hmac.new(k,d,H[h]).digest()
def derive(h,skeyid,gxy,ci,cr):
    d=prf(h,skeyid,gxy+ci+cr+b'\0'); a=prf(h,skeyid,d+gxy+ci+cr+b'\1'); e=prf(h,skeyid,a+gxy+ci+cr+b'\2'); return d,a,e
# sanity against libreswan's CAVP-format vectors
x=bytes.fromhex
s=prf('SHA-1',x('75'),x('b9a2d0e922dc66dd')+x('2130166863b5ddef'))
assert s.hex()=='62b04d112877e442fc3282fc37c076997718a0b9'
d,a,e=derive('SHA-1',s,x('739003ba2c11c982946c65e26acf661fbf8ebb78011a9fead79efa12fe3e71cc'),x('83d374c30b3b5082'),x('5afc0da06c728029'))
assert (d.hex(),a.hex(),e.hex())==('369e5aad1bdb5faf6a3d929d500cdc236710a9ab','588e957d8d790d093b3a39f121473473af78e9bb','cd74b0c048219db81384d3fda8f6cda51e398a2b')
s=prf('SHA-1',x('69a62284195f1680')+x('80c94ba25c8abda5'),x('8ba4cbc73c0187301dc19a975823854dbd641c597f637f8d053a83b9514673eb'))
assert s.hex()=='707197817fb2d90cf54d1842606bdea59b9f4823'
print("libreswan vectors agree with python")
rng=random.Random(20261123)
def rb(n): return bytes(rng.getrandbits(8) for _ in range(n))
for mode in ('psk','dsa'):
    out=[f"# IKEv1 KDF (SP 800-135) vectors, {mode.upper()} authentication, CAVP .fax layout.",
         "# Generated with Python 3 hmac/hashlib (an implementation independent of this crate) by",
         "# the script in README.md; g^xy of COUNT = 1 has a leading zero byte on purpose.",""]
    for h in ('SHA-1','SHA-256','SHA-384','SHA-512'):
        gl=2048 if h!='SHA-512' else 1024
        out.append(f"[{h}]\n[g^xy length = {gl}]\n[Ni length = 256]\n[Nr length = 256]" + ("\n[pre-shared-key length = 160]" if mode=='psk' else "")+"\n")
        for c in range(3):
            ci,cr,ni,nr=rb(8),rb(8),rb(32),rb(32)
            gxy=rb(gl//8)
            if c==1: gxy=b'\0'+gxy[1:]
            psk=rb(20+c)
            s=prf(h,psk,ni+nr) if mode=='psk' else prf(h,ni+nr,gxy)
            d,a,e=derive(h,s,gxy,ci,cr)
            out.append(f"COUNT = {c}\nCKY_I = {ci.hex()}\nCKY_R = {cr.hex()}\nNi = {ni.hex()}\nNr = {nr.hex()}\ng^xy = {gxy.hex()}")
            if mode=='psk': out.append(f"pre-shared-key = {psk.hex()}")
            out.append(f"SKEYID = {s.hex()}\nSKEYID_d = {d.hex()}\nSKEYID_a = {a.hex()}\nSKEYID_e = {e.hex()}\n")
    open(f'ikev1_{mode}_python.fax','w').write("\n".join(out))
