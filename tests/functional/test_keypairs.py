"""Key pairs through /os-keypairs: bodies and status codes per microversion, import, generation,
fingerprints, duplicates, quota, per-user access and paging."""

from __future__ import annotations

import pytest

from tests.conftest import Api

KP = "/compute/v2.1/os-keypairs"
RSA_PUB = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDFjk9FSmnmZcrMAzoUBwcc5m0rACGx9bpECS"
    "tct8GbadZmQp71p4vLkn0pXoooQYHRo4Imt0tSTiNsmARZQjRsWRCcL9c7qfDk+C9M2H8k/eA"
    "tGMVEBLLZFKzmKoX8cqvDpWXX8u6rRfiYZE2S5ZtnQKrRGYfNhDt2/Cxa/lRpvw== "
    "test@novalite"
)
RSA_MD5 = "3a:39:1f:b6:09:ec:8a:9c:58:ab:8f:b1:b5:d9:de:14"  # ssh-keygen -l -E md5
ED25519_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGpI8NtPBk5Y8FG28yhgkBlB6E5dRZxmBk/bqYPk6k5v"
ED25519_MD5 = "89:9e:ca:01:36:26:15:ff:57:8a:04:c6:c4:46:73:eb"
CERT = """-----BEGIN CERTIFICATE-----
MIICDjCCAXegAwIBAgIUfh2jokTk3wANU/6jhHiAlcN4JawwDQYJKoZIhvcNAQEL
BQAwGDEWMBQGA1UEAwwNbm92YWxpdGUtdGVzdDAgFw0yNjExMjQxMjEzMDJaGA8y
MTI2MTAzMTEyMTMwMlowGDEWMBQGA1UEAwwNbm92YWxpdGUtdGVzdDCBnzANBgkq
hkiG9w0BAQEFAAOBjQAwgYkCgYEAvPBzzxgINjaqVk1BmyY/XPRHH/cVPQmiMLJP
SN+81IiV77VQjiWaFM9TxzGeuBnCVJkrYP54lw33DTnAW7ILeYOjbRwNaI7AJaNo
e6mbq/O7Kn2hxPlSMX4SpLhwDUJgoEcijSq9wjyeBdTWNoNxrMXao0Otbpd0esTh
p1kVAv8CAwEAAaNTMFEwHQYDVR0OBBYEFPaexg+Zqe+PPxWxvz/OAqwyseeNMB8G
A1UdIwQYMBaAFPaexg+Zqe+PPxWxvz/OAqwyseeNMA8GA1UdEwEB/wQFMAMBAf8w
DQYJKoZIhvcNAQELBQADgYEAkkOkaM3ZrCeqQ1/imQjFhka5biQyqvPWP/0DZ29M
00WZgNBkKGYt3Ysb7myYpnD6SUFQRsjRXBNTNb0wEUtpUZMtF1tSlv0i6gOM6rYI
j8dy1QaM16ubKLlfpm6mT639OCRgKIq3DRXDC1QLFVN05FPuADKaKXhXKf9aROFy
8Ss=
-----END CERTIFICATE-----
"""
CERT_SHA1 = "86:1b:c3:e2:d6:48:ae:d9:2b:b5:c2:c2:07:0b:a5:ca:91:34:ec:61"  # openssl x509 -fingerprint -sha1
SHOW_KEYS_21 = {
    "name",
    "public_key",
    "fingerprint",
    "user_id",
    "id",
    "created_at",
    "updated_at",
    "deleted",
    "deleted_at",
}


def _create(stack: Api, name: str, version: str = "2.2", as_: str = "demo", **fields: str):  # type: ignore[no-untyped-def]
    return stack.post(KP, as_=as_, version=version, json={"keypair": {"name": name, **fields}})


def test_generated_keypair_at_21_is_200_without_type(stack: Api) -> None:
    r = _create(stack, "gen1", version="2.1")
    assert r.status_code == 200, r.text
    kp = r.json()["keypair"]
    assert set(kp) == {"name", "public_key", "fingerprint", "user_id", "private_key"}
    assert kp["public_key"].startswith("ssh-rsa ")
    assert kp["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert kp["user_id"] == stack.ids["demo_user"]
    assert len(kp["fingerprint"].split(":")) == 16
    # the private key is shown once only
    shown = stack.get(f"{KP}/gen1", version="2.1").json()["keypair"]
    assert set(shown) == SHOW_KEYS_21
    assert shown["public_key"] == kp["public_key"] and shown["fingerprint"] == kp["fingerprint"]


def test_generated_keypair_at_22_is_201_with_type(stack: Api) -> None:
    r = _create(stack, "gen2", version="2.2")
    assert r.status_code == 201, r.text
    assert set(r.json()["keypair"]) == {"name", "public_key", "fingerprint", "user_id", "private_key", "type"}
    assert r.json()["keypair"]["type"] == "ssh"
    shown = stack.get(f"{KP}/gen2", version="2.2").json()["keypair"]
    assert set(shown) == SHOW_KEYS_21 | {"type"}
    assert shown["deleted"] is False and shown["deleted_at"] is None


@pytest.mark.parametrize("public_key,fingerprint", [(RSA_PUB, RSA_MD5), (ED25519_PUB, ED25519_MD5)])
def test_import_ssh_key_fingerprint_is_md5(stack: Api, public_key: str, fingerprint: str) -> None:
    r = _create(stack, "imported", public_key=public_key)
    assert r.status_code == 201, r.text
    kp = r.json()["keypair"]
    assert "private_key" not in kp
    assert kp["fingerprint"] == fingerprint
    assert kp["public_key"] == public_key


def test_x509_import_and_generation(stack: Api) -> None:
    r = _create(stack, "cert", type="x509", public_key=CERT)
    assert r.status_code == 201, r.text
    assert r.json()["keypair"]["fingerprint"] == CERT_SHA1
    assert r.json()["keypair"]["type"] == "x509"
    r = _create(stack, "cert2", type="x509")
    assert r.status_code == 201
    assert r.json()["keypair"]["public_key"].startswith("-----BEGIN CERTIFICATE-----")
    assert "private_key" in r.json()["keypair"]
    r = _create(stack, "cert3", type="x509", public_key=RSA_PUB)
    assert r.status_code == 400
    assert "Keypair data is invalid" in r.json()["badRequest"]["message"]


def test_type_is_refused_before_22(stack: Api) -> None:
    assert _create(stack, "t", version="2.1", type="ssh").status_code == 400
    assert _create(stack, "t", version="2.2", type="rsa").status_code == 400


@pytest.mark.parametrize("public_key", ["", "ssh-rsa not-base64!", "garbage", "ssh-rsa AAAAB3NzaC1yc2E= x"])
def test_invalid_public_key_is_400(stack: Api, public_key: str) -> None:
    r = _create(stack, "bad", public_key=public_key)
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"].startswith("Keypair data is invalid")


@pytest.mark.parametrize("name", ["", "x" * 256, "bad/name", "émoji", "a@b.c"])
def test_invalid_names_at_291(stack: Api, name: str) -> None:
    assert _create(stack, name, version="2.91", public_key=RSA_PUB).status_code == 400


def test_292_allows_at_and_dot_and_requires_public_key(stack: Api) -> None:
    r = _create(stack, "me@host.example", version="2.92", public_key=RSA_PUB)
    assert r.status_code == 201, r.text
    assert _create(stack, "gen-292", version="2.92").status_code == 400
    assert stack.get(f"{KP}/me@host.example", version="2.92").status_code == 200


def test_duplicate_is_409(stack: Api) -> None:
    assert _create(stack, "dup", public_key=RSA_PUB).status_code == 201
    r = _create(stack, "dup", public_key=RSA_PUB)
    assert r.status_code == 409
    assert r.json()["conflictingRequest"]["message"] == "Key pair 'dup' already exists."


def test_bad_bodies_are_400(stack: Api) -> None:
    assert stack.post(KP, version="2.2", json={"keypair": {"name": "a", "extra": 1}}).status_code == 400
    assert stack.post(KP, version="2.2", json={"nope": {}}).status_code == 400
    assert stack.post(KP, version="2.2", json={"keypair": {"name": 5}}).status_code == 400
    r = stack.post(KP, version="2.2", content=b"{bad", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_list_shape_per_version_and_delete_codes(stack: Api) -> None:
    _create(stack, "b-key", public_key=RSA_PUB)
    _create(stack, "a-key", public_key=ED25519_PUB)
    r = stack.get(KP, version="2.1")
    assert r.status_code == 200
    items = r.json()["keypairs"]
    assert [i["keypair"]["name"] for i in items] == ["a-key", "b-key"]
    assert all(set(i["keypair"]) == {"name", "public_key", "fingerprint"} for i in items)
    items = stack.get(KP, version="2.2").json()["keypairs"]
    assert all(set(i["keypair"]) == {"name", "public_key", "fingerprint", "type"} for i in items)
    assert stack.delete(f"{KP}/a-key", version="2.1").status_code == 202
    assert stack.delete(f"{KP}/b-key", version="2.2").status_code == 204
    r = stack.get(f"{KP}/b-key", version="2.2")
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["code"] == 404
    assert stack.delete(f"{KP}/b-key", version="2.2").status_code == 404
    assert stack.get(KP, version="2.2").json() == {"keypairs": []}


def test_keypairs_are_per_user(stack: Api) -> None:
    _create(stack, "mine", public_key=RSA_PUB)
    assert stack.get(f"{KP}/mine", as_="admin").status_code == 404
    assert stack.get(KP, as_="admin").json()["keypairs"] == []


def test_admin_acts_for_another_user_from_210(stack: Api) -> None:
    demo = stack.ids["demo_user"]
    r = _create(stack, "for-demo", version="2.10", as_="admin", user_id=demo, public_key=RSA_PUB)
    assert r.status_code == 201, r.text
    assert r.json()["keypair"]["user_id"] == demo
    assert stack.get(f"{KP}/for-demo", version="2.10").status_code == 200
    assert stack.get(f"{KP}/for-demo?user_id={demo}", as_="admin", version="2.10").status_code == 200
    listed = stack.get(f"{KP}?user_id={demo}", as_="admin", version="2.10").json()["keypairs"]
    assert [k["keypair"]["name"] for k in listed] == ["for-demo"]
    # user_id is not a field before 2.10
    assert _create(stack, "x", version="2.9", as_="admin", user_id=demo).status_code == 400
    # a member may not act for someone else
    admin = stack.ids["admin_user"]
    assert _create(stack, "x", version="2.10", user_id=admin, public_key=RSA_PUB).status_code == 403
    assert stack.get(f"{KP}?user_id={admin}", version="2.10").status_code == 403
    assert stack.delete(f"{KP}/for-demo?user_id={demo}", as_="admin", version="2.10").status_code == 204
    assert stack.get(f"{KP}/for-demo", version="2.10").status_code == 404


def test_paging_from_235(stack: Api) -> None:
    for name in ("k1", "k2", "k3"):
        _create(stack, name, public_key=RSA_PUB)
    r = stack.get(f"{KP}?limit=2", version="2.35").json()
    assert [k["keypair"]["name"] for k in r["keypairs"]] == ["k1", "k2"]
    assert r["keypairs_links"][0]["rel"] == "next"
    assert "marker=k2" in r["keypairs_links"][0]["href"]
    r = stack.get(f"{KP}?limit=2&marker=k2", version="2.35").json()
    assert [k["keypair"]["name"] for k in r["keypairs"]] == ["k3"]
    assert "keypairs_links" not in r
    assert stack.get(f"{KP}?marker=nope", version="2.35").status_code == 400
    assert stack.get(f"{KP}?limit=x", version="2.35").status_code == 400
    # before 2.35 paging parameters are ignored
    r = stack.get(f"{KP}?limit=1", version="2.34").json()
    assert len(r["keypairs"]) == 3 and "keypairs_links" not in r


def test_key_pairs_quota(stack: Api) -> None:
    r = stack.put(
        f"/compute/v2.1/os-quota-sets/{stack.ids['demo_project']}",
        as_="admin",
        json={"quota_set": {"key_pairs": 1}},
    )
    assert r.status_code == 200, r.text
    assert _create(stack, "one", public_key=RSA_PUB).status_code == 201
    r = _create(stack, "two", public_key=RSA_PUB)
    assert r.status_code == 403
    assert r.json()["forbidden"]["message"] == "Quota exceeded, too many key pairs."
    assert [k["keypair"]["name"] for k in stack.get(KP).json()["keypairs"]] == ["one"]


def test_user_id_query_is_ignored_before_210(stack: Api) -> None:
    demo = stack.ids["demo_user"]
    _create(stack, "demo-only", public_key=RSA_PUB)
    assert stack.get(f"{KP}?user_id={demo}", as_="admin", version="2.9").json() == {"keypairs": []}
    assert stack.get(f"{KP}/demo-only?user_id={demo}", as_="admin", version="2.9").status_code == 404
    assert stack.get(f"{KP}/demo-only?user_id={demo}", as_="admin", version="2.10").status_code == 200


@pytest.mark.parametrize("postgres", [False, True])
def test_concurrent_creates_respect_the_quota(stack_factory, postgres: bool) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    api = stack_factory(postgres=postgres)
    r = api.put(
        f"/compute/v2.1/os-quota-sets/{api.ids['demo_project']}",
        as_="admin",
        json={"quota_set": {"key_pairs": 3}},
    )
    assert r.status_code == 200
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(
            pool.map(lambda i: _create(api, f"race-{i % 5}", public_key=RSA_PUB).status_code, range(10))
        )
    assert codes.count(201) == 3
    assert set(codes) <= {201, 403, 409}
    assert len(api.get(KP).json()["keypairs"]) == 3
