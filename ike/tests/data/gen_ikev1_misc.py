import hmac, hashlib, random, struct
H={'MD5':hashlib.md5,'SHA1':hashlib.sha1,'SHA2-256':hashlib.sha256,'SHA2-384':hashlib.sha384,'SHA2-512':hashlib.sha512}
def prf(h,k,d): return hmac.new(k,d,H[h]).digest()
rng=random.Random(5)
def rb(n): return bytes(rng.getrandbits(8) for _ in range(n))
out=["# RFC 2409 derivations beyond SKEYID, computed with Python 3 hmac/hashlib by",
"# gen_ikev1_misc.py (independent of the crate). One record per blank-line-separated block;",
"# `kind` says which function the record checks.",""]
def rec(**kv):
    for k,v in kv.items():
        out.append(f"{k} = {v.hex() if isinstance(v,bytes) else v}")
    out.append("")
# cipher key expansion (Appendix B)
for h,klen in (('SHA1',24),('MD5',32),('MD5',24),('SHA2-256',32),('SHA1',16)):
    e=rb(H[h]().digest_size)
    if len(e)>=klen: ka=e[:klen]
    else:
        ka=b''; k=prf(h,e,b'\0')
        while True:
            ka+=k
            if len(ka)>=klen: break
            k=prf(h,e,k)
        ka=ka[:klen]
    rec(kind='cipher_key',prf=h,skeyid_e=e,key_len=klen,key=ka)
# keymat
for h,pfs,ln in (('SHA1',False,20),('SHA1',False,56),('SHA1',True,64),('SHA2-256',True,80),('MD5',False,40)):
    d=rb(H[h]().digest_size); g=rb(256) if pfs else b''; spi=rb(4); ni=rb(16); nr=rb(24); proto=3
    seed=g+bytes([proto])+spi+ni+nr
    km=b''; k=prf(h,d,seed)
    while True:
        km+=k
        if len(km)>=ln: break
        k=prf(h,d,k+seed)
    rec(kind='keymat',prf=h,skeyid_d=d,g_qm_xy=(g if pfs else 'none'),protocol=proto,spi=spi,ni_b=ni,nr_b=nr,len=ln,keymat=km[:ln])
# phase2 iv, qm hashes, info hash, hash_i/r, phase1 iv
for h,bl in (('SHA1',8),('SHA2-256',16)):
    last=rb(bl); mid=rng.getrandbits(32)
    rec(kind='phase2_iv',hash=h,block_len=bl,last_block=last,message_id=mid,iv=hashlib.new(H[h]().name,last+struct.pack('>I',mid)).digest()[:bl])
    a=rb(H[h]().digest_size); ni=rb(16); nr=rb(16); rest=rb(60)
    m=struct.pack('>I',mid)
    rec(kind='qm_hash',prf=h,skeyid_a=a,message_id=mid,ni_b=ni,nr_b=nr,rest=rest,hash1=prf(h,a,m+rest),hash2=prf(h,a,m+ni+rest),hash3=prf(h,a,b'\0'+m+ni+nr),info=prf(h,a,m+rest))
    s=rb(H[h]().digest_size); gxi=rb(128); gxr=rb(128); ci=rb(8); cr=rb(8); sa=rb(52); idi=rb(8); idr=rb(12)
    rec(kind='hash_ir',prf=h,skeyid=s,gxi=gxi,gxr=gxr,cky_i=ci,cky_r=cr,sai_b=sa,idii_b=idi,idir_b=idr,
        hash_i=prf(h,s,gxi+gxr+ci+cr+sa+idi),hash_r=prf(h,s,gxr+gxi+cr+ci+sa+idr),
        phase1_iv=hashlib.new(H[h]().name,gxi+gxr).digest()[:bl],block_len=bl)
open('ikev1_misc_python.txt','w').write("\n".join(out))
