"""Cost of signing and verifying an oadrPayload: oadr.signing against signxml and python-xmlsec.

    .venv/bin/python benchmarks/signing.py [--seconds 0.5]

Prints µs per sign and per verify for RSA-2048 and P-256 on two messages (an oadrPoll, and an
oadrUpdateReport with 100 intervals, ~32 kB), each with its ratio to signxml in the same run.
"signxml" is what OpenLEADR does (XMLSigner on the signed object, then XMLVerifier with the
KeyInfo certificate and expect_references=2); "xmlsec" is libxmlsec1 through python-xmlsec with
the same template and no structural checks (skipped when python-xmlsec is not installed).
Every candidate's output is first checked by oadr.signing.verify and by signxml, so all three
time the same wire format. Replay caches are left out everywhere; only the crypto path is timed.
"""

from __future__ import annotations

import argparse
import base64
import functools
import importlib
import itertools
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from openleadr import messaging
from signxml import methods
from signxml.algorithms import SignatureMethod
from signxml.signer import XMLSigner
from signxml.verifier import XMLVerifier

from oadr import signing

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
DS = "{http://www.w3.org/2000/09/xmldsig#}"


@dataclass(frozen=True)
class Keys:
    name: str
    signing_key: signing.SigningKey
    key_pem: bytes
    cert_pem: bytes


def make_keys(name: str, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> Keys:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bench-{name}")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    return Keys(name, signing.SigningKey(key, certificate), key_pem, cert_pem)


def make_messages() -> dict[str, bytes]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    intervals = [
        {
            "dtstart": start + timedelta(minutes=15 * i),
            "duration": timedelta(minutes=15),
            "report_payload": {"r_id": "rid1", "value": 1.5 * i},
        }
        for i in range(100)
    ]
    report = {
        "report_id": "r1",
        "report_request_id": "rr1",
        "report_specifier_id": "rs1",
        "report_name": "TELEMETRY_USAGE",
        "created_date_time": start,
        "dtstart": start,
        "intervals": intervals,
    }
    poll = messaging.create_message("oadrPoll", ven_id="ven1")
    update = messaging.create_message(
        "oadrUpdateReport", request_id="req1", reports=[report], ven_id="ven1"
    )
    return {"oadrPoll": poll.encode(), "oadrUpdateReport x100": update.encode()}


# --- candidates: sign(unsigned tree, keys) mutates the tree; verify(signed tree, keys) --------


def ours_sign(tree: etree._Element, keys: Keys) -> None:
    signing.sign(tree, keys.signing_key, now=NOW, nonce=uuid.uuid4().hex)


def ours_verify(tree: etree._Element, keys: Keys) -> None:
    signing.verify(tree, now=NOW, replay_guard=None)


def signxml_sign(tree: etree._Element, keys: Keys) -> None:
    """openleadr.messaging.create_message, less the templating: sign the object, insert."""
    signed_object = tree[0]
    signer = XMLSigner(
        method=methods.detached, c14n_algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
    )
    signer.namespaces["oadr"] = signing.OADR_NS
    signer.sign_alg = (
        SignatureMethod.RSA_SHA256 if keys.name == "RSA-2048" else SignatureMethod.ECDSA_SHA256
    )
    replay_protect = etree.Element(
        f"{{{signing.DSP_NS}}}ReplayProtect", nsmap={"dsp": signing.DSP_NS}
    )
    etree.SubElement(replay_protect, f"{{{signing.DSP_NS}}}timestamp").text = NOW.strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
    etree.SubElement(replay_protect, f"{{{signing.DSP_NS}}}nonce").text = uuid.uuid4().hex
    signature = signer.sign(
        etree.fromstring(etree.tostring(signed_object)),
        key=keys.signing_key.key,  # OpenLEADR passes PEM and pays a key load per message
        cert=keys.cert_pem.decode(),
        reference_uri="#oadrSignedObject",
        signature_properties=replay_protect,
    )
    tree.insert(0, signature)


def signxml_verify(tree: etree._Element, keys: Keys | None) -> None:
    """openleadr.messaging.validate_xml_signature, less its module-global replay cache."""
    cert_text = tree.findtext(f".//{DS}X509Certificate") or ""
    pem = f"-----BEGIN CERTIFICATE-----\n{cert_text.strip()}\n-----END CERTIFICATE-----\n"
    XMLVerifier().verify(tree, x509_cert=pem, expect_references=2)


def xmlsec_candidates() -> tuple[Callable[..., None], Callable[..., None]] | None:
    try:
        xmlsec: Any = importlib.import_module("xmlsec")  # no type stubs; optional here
    except ImportError:
        return None
    loaded: dict[str, Any] = {}  # PEM -> xmlsec.Key, loaded once like the other candidates

    def template(tree: etree._Element, keys: Keys) -> etree._Element:
        """The Signature shape oadr.signing makes, with empty values for libxmlsec1 to fill."""
        signature = etree.Element(f"{DS}Signature", nsmap={"ds": DS[1:-1]})
        signed_info = etree.SubElement(signature, f"{DS}SignedInfo")
        etree.SubElement(signed_info, f"{DS}CanonicalizationMethod", Algorithm=signing.C14N)
        algorithm = signing.RSA_SHA256 if keys.name == "RSA-2048" else signing.ECDSA_SHA256
        etree.SubElement(signed_info, f"{DS}SignatureMethod", Algorithm=algorithm)
        for uri in ("#oadrSignedObject", "#props"):
            reference = etree.SubElement(signed_info, f"{DS}Reference", URI=uri)
            transforms = etree.SubElement(reference, f"{DS}Transforms")
            etree.SubElement(transforms, f"{DS}Transform", Algorithm=signing.C14N)
            etree.SubElement(reference, f"{DS}DigestMethod", Algorithm=signing.SHA256)
            etree.SubElement(reference, f"{DS}DigestValue")
        etree.SubElement(signature, f"{DS}SignatureValue")
        key_info = etree.SubElement(signature, f"{DS}KeyInfo")
        x509_data = etree.SubElement(key_info, f"{DS}X509Data")
        etree.SubElement(x509_data, f"{DS}X509Certificate")
        properties = etree.SubElement(signature, f"{DS}Object", Id="props")
        signature_property = etree.SubElement(
            etree.SubElement(properties, f"{DS}SignatureProperties"),
            f"{DS}SignatureProperty",
            Target="#oadrSignedObject",
        )
        dsp = f"{{{signing.DSP_NS}}}"
        replay_protect = etree.SubElement(
            signature_property, f"{dsp}ReplayProtect", nsmap={"dsp": signing.DSP_NS}
        )
        etree.SubElement(replay_protect, f"{dsp}timestamp").text = NOW.strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )
        etree.SubElement(replay_protect, f"{dsp}nonce").text = uuid.uuid4().hex
        tree.insert(0, signature)
        return signature

    def sign(tree: etree._Element, keys: Keys) -> None:
        signature = template(tree, keys)
        xmlsec.tree.add_ids(tree, ["Id"])
        context = xmlsec.SignatureContext()
        if keys.name not in loaded:
            loaded[keys.name] = xmlsec.Key.from_memory(keys.key_pem, xmlsec.KeyFormat.PEM)
            loaded[keys.name].load_cert_from_memory(keys.cert_pem, xmlsec.KeyFormat.CERT_PEM)
        context.key = loaded[keys.name]
        context.sign(signature)

    def verify(tree: etree._Element, keys: Keys) -> None:
        signature = tree[0]
        der = base64.b64decode(signature.findtext(f".//{DS}X509Certificate") or "")
        xmlsec.tree.add_ids(tree, ["Id"])
        context = xmlsec.SignatureContext()
        context.key = xmlsec.Key.from_memory(der, xmlsec.KeyFormat.CERT_DER)
        context.verify(signature)

    return sign, verify


# --- timing ----------------------------------------------------------------------------------


def time_us(
    run: Callable[[etree._Element], None], prepare: Callable[[], etree._Element], seconds: float
) -> float:
    """Median µs per call over 5 batches; `prepare()` makes the tree, outside the clock."""
    batches: list[float] = []
    for _ in range(5):
        spent, calls, deadline = 0.0, 0, time.perf_counter() + seconds / 5
        while time.perf_counter() < deadline or calls < 3:
            tree = prepare()
            start = time.perf_counter()
            run(tree)
            spent += time.perf_counter() - start
            calls += 1
        batches.append(spent / calls * 1e6)
    return statistics.median(batches)


def check_interop(signed: bytes) -> None:
    """Every candidate's output must pass both oadr.signing and signxml, or timing is moot."""
    signing.verify(etree.fromstring(signed, PARSER), now=NOW, replay_guard=None)
    signxml_verify(etree.fromstring(signed, PARSER), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="per measurement")
    args = parser.parse_args()

    candidates: dict[str, tuple[Callable[..., None], Callable[..., None]]] = {
        "signxml": (signxml_sign, signxml_verify),
        "oadr.signing": (ours_sign, ours_verify),
    }
    xmlsec_pair = xmlsec_candidates()
    if xmlsec_pair is None:
        print("python-xmlsec not installed: skipped")
    else:
        candidates["xmlsec"] = xmlsec_pair

    all_keys = [
        make_keys("RSA-2048", rsa.generate_private_key(65537, 2048)),
        make_keys("P-256", ec.generate_private_key(ec.SECP256R1())),
    ]
    print(
        f"{'message':24} {'key':9} {'candidate':13} {'sign µs':>9} {'×signxml':>8}"
        f" {'verify µs':>10} {'×signxml':>8}"
    )
    for message_name, unsigned in make_messages().items():
        for keys in all_keys:
            baseline: tuple[float, float] | None = None
            for name, (sign, verify) in candidates.items():
                tree = etree.fromstring(unsigned, PARSER)
                sign(tree, keys)
                signed = etree.tostring(tree)
                check_interop(signed)
                signed_tree = etree.fromstring(signed, PARSER)
                sign_us = time_us(
                    functools.partial(sign, keys=keys),
                    functools.partial(etree.fromstring, unsigned, PARSER),
                    args.seconds,
                )
                verify_us = time_us(
                    functools.partial(verify, keys=keys),
                    itertools.repeat(signed_tree).__next__,
                    args.seconds,
                )
                if baseline is None:
                    baseline = (sign_us, verify_us)
                sign_ratio, verify_ratio = sign_us / baseline[0], verify_us / baseline[1]
                print(
                    f"{message_name:24} {keys.name:9} {name:13} {sign_us:9.0f} {sign_ratio:8.2f}"
                    f" {verify_us:10.0f} {verify_ratio:8.2f}"
                )


if __name__ == "__main__":
    main()
