#!/usr/bin/python3
"""mkcerts.py DIR - the certificates test/daemon/test_doctor_tls.sh checks, made with the
`cryptography` module (openssl req cannot backdate a certificate; this can):

  ca.pem                 a root CA (the test points SSL_CERT_FILE at it)
  inter.pem              an intermediate CA signed by the root
  good.pem / good.key    mail.example.test, www.example.test; signed by the intermediate
  fullchain.pem          good.pem + inter.pem
  chain.pem              good.key + good.pem + inter.pem (smtpd_tls_chain_files layout)
  badorder.pem           good.pem + inter.pem + good.key (a key after its certificate)
  expired.pem/.key       expired 10 days ago          soon.pem/.key   expires in 5 days
  future.pem/.key        valid from 10 days on        wrongname.pem/.key  other.example.test
  wildcard.pem/.key      *.example.test               weak.pem/.key   RSA 1024
  other.key              a key that matches nothing   encrypted.key   good.key with a passphrase
"""
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

out = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
day = datetime.timedelta(days=1)


def key(bits=2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def write_key(path, k, password=None):
    enc = (serialization.BestAvailableEncryption(password) if password
           else serialization.NoEncryption())
    with open(path, "wb") as f:
        f.write(k.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8, enc))


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def cert(k, cn, issuer_cert, issuer_key, names=None, ca=False, start=None, end=None):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (x509.CertificateBuilder()
         .subject_name(subject)
         .issuer_name(issuer_cert.subject if issuer_cert else subject)
         .public_key(k.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(start or now - day)
         .not_valid_after(end or now + 90 * day)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                          key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, key_cert_sign=True,
                                          crl_sign=True, encipher_only=False,
                                          decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                            critical=False)
    if names:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                            critical=False)
    return b.sign(issuer_key or k, hashes.SHA256())


ca_key = ec.generate_private_key(ec.SECP256R1())
ca = cert(ca_key, "Test Root CA", None, None, ca=True, end=now + 3650 * day)
inter_key = ec.generate_private_key(ec.SECP256R1())
inter = cert(inter_key, "Test Intermediate CA", ca, ca_key, ca=True, end=now + 3650 * day)
open(out + "/ca.pem", "wb").write(pem(ca))
open(out + "/inter.pem", "wb").write(pem(inter))


def leaf(name, cn, names, bits=2048, **kw):
    k = key(bits)
    c = cert(k, cn, inter, inter_key, names=names, **kw)
    write_key("%s/%s.key" % (out, name), k)
    open("%s/%s.pem" % (out, name), "wb").write(pem(c))
    return k, c


good_key, good = leaf("good", "mail.example.test", ["mail.example.test", "www.example.test"])
open(out + "/fullchain.pem", "wb").write(pem(good) + pem(inter))
chain_key = good_key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.TraditionalOpenSSL,
                                   serialization.NoEncryption())
open(out + "/chain.pem", "wb").write(chain_key + pem(good) + pem(inter))
open(out + "/badorder.pem", "wb").write(pem(good) + pem(inter) + chain_key)
leaf("expired", "mail.example.test", ["mail.example.test"], start=now - 100 * day,
     end=now - 10 * day)
leaf("soon", "mail.example.test", ["mail.example.test"], end=now + 5 * day + datetime.timedelta(hours=6))
leaf("future", "mail.example.test", ["mail.example.test"], start=now + 10 * day,
     end=now + 100 * day)
leaf("wrongname", "other.example.test", ["other.example.test"])
leaf("wildcard", "*.example.test", ["*.example.test"])
leaf("weak", "mail.example.test", ["mail.example.test"], bits=1024)
write_key(out + "/other.key", key())
write_key(out + "/encrypted.key", good_key, b"secret")
