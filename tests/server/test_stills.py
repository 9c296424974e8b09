"""POST /api/remove against a real server: the CLI's alpha exactly, rembg-style calls, refusals."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np

from tests.server.conftest import REPO, assert_json_error


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None
    return image


def test_still_round_trip_alpha_equals_the_cli(server, photo, tmp_path):
    with server.client() as client, open(photo, "rb") as file:
        answer = client.post("/api/remove", files={"file": ("portrait.png", file, "image/png")})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    assert 'filename="portrait_matte.png"' in answer.headers["content-disposition"]
    served = decode(answer.content)

    cli = subprocess.run(
        [sys.executable, "-m", "vidmatte", str(photo), "-o", str(tmp_path / "cli.png"), "-q", "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert cli.returncode == 0, cli.stderr
    expected = cv2.imread(str(tmp_path / "cli.png"), cv2.IMREAD_UNCHANGED)
    assert served.shape == expected.shape == (160, 120, 4)
    assert np.array_equal(served[..., 3], expected[..., 3])  # the alpha, exactly
    assert np.array_equal(served, expected)  # and the foreground colour too
    assert 0 < served[..., 3].mean() < 255  # a real matte, not all one value


def test_raw_body_accept_header_and_format(server, photo):
    body = photo.read_bytes()
    fast = {"passes": "1", "refine": "false"}
    with server.client() as client:
        webp = client.post("/api/remove", params=fast, content=body, headers={"Accept": "image/webp"})
        assert webp.status_code == 200 and webp.headers["content-type"] == "image/webp"
        assert decode(webp.content).shape == (160, 120, 4)
        # q-values: jpeg preferred; a JPEG cannot hold alpha, so it is a composite (over green)
        jpeg = client.post("/api/remove", params=fast, content=body, headers={"Accept": "image/png;q=0.5, image/jpeg"})
        assert jpeg.headers["content-type"] == "image/jpeg" and decode(jpeg.content).shape == (160, 120, 3)
        # the format parameter wins over Accept
        png = client.post(
            "/api/remove", params={**fast, "format": "png"}, content=body, headers={"Accept": "image/webp"}
        )
        assert png.headers["content-type"] == "image/png"
        assert_json_error(
            client.post("/api/remove", params=fast, content=body, headers={"Accept": "application/json"}),
            406,
            "image/png",
        )


def test_rembg_and_remove_bg_style_calls(server, photo):
    """rembg: field `file`, `om` (only mask), `model` ignored; remove.bg / Clipdrop: `image_file`, `bg_color`."""
    with server.client() as client:
        with open(photo, "rb") as file:
            mask = client.post(
                "/api/remove",
                files={"file": file},
                data={"om": "true", "model": "u2net", "passes": "1", "refine": "false"},
            )
        assert mask.status_code == 200, mask.text
        assert decode(mask.content).ndim == 2  # a grey matte
        with open(photo, "rb") as file:
            composite = client.post(
                "/api/remove",
                files={"image_file": file},
                data={"bg_color": "ff00ff", "format": "jpg", "passes": "1", "refine": "false"},
            )
        assert composite.status_code == 200, composite.text
        corner = decode(composite.content)[2, 2].astype(int)  # background: magenta (BGR)
        assert abs(corner[0] - 255) < 60 and corner[1] < 80 and abs(corner[2] - 255) < 60, corner


def test_still_refusals_are_one_line_json(server, photo, media_dir):
    text = media_dir / "notes.png"
    text.write_text("this is not a picture\n" * 20)
    truncated = media_dir / "cut.png"
    truncated.write_bytes(photo.read_bytes()[:400])
    with server.client() as client:
        with open(text, "rb") as file:
            message = assert_json_error(
                client.post("/api/remove", files={"file": ("notes.png", file)}), 415, "notes.png", "not an image"
            )
        assert str(server.data) not in message  # the server's paths stay on the server
        with open(truncated, "rb") as file:
            assert_json_error(
                client.post("/api/remove", files={"file": ("cut.png", file)}), 415, "cut.png", "truncated"
            )
        with open(photo, "rb") as file:
            assert_json_error(
                client.post("/api/remove", files={"file": file}, data={"ouput_type": "alpha"}),
                400,
                "unknown parameter 'ouput_type'",
            )
        with open(photo, "rb") as file:
            assert_json_error(
                client.post("/api/remove", files={"file": file}, data={"background": "/etc/passwd"}),
                400,
                "reads no background files",
            )
        with open(photo, "rb") as file:
            assert_json_error(
                client.post("/api/remove", files={"file": file}, data={"format": "jpg", "output_type": "rgba"}),
                400,
                "format jpg",
            )
        assert_json_error(client.post("/api/remove", content=b""), 400, "no file")
        assert_json_error(client.post("/api/remove", files={"other": ("x.png", b"123")}), 400, "'file'")
    assert list((server.data / "tmp").iterdir()) == []  # nothing left behind


def test_unknown_routes_and_methods_are_json(server):
    with server.client() as client:
        assert_json_error(client.get("/api/nothing"), 404, "no such")
        assert_json_error(client.get("/api/remove"), 405)
        assert_json_error(client.get("/api/jobs", params={"limit": "many"}), 400, "limit")
        health = client.get("/healthz").json()
        assert health["status"] == "ok" and health["auth"] is False and health["device"].startswith("cpu")
        page = client.get("/")
        assert page.status_code == 200 and "<title>vidmatte</title>" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/openapi.json").json()["paths"]["/api/jobs"]["post"]


def test_subject_keeps_one_person_and_a_miss_is_422(server, photo, media_dir):
    """Two people side by side (the portrait and its mirror image): `subject` keeps the one clicked."""
    one = cv2.imread(str(photo))
    two = media_dir / "two.png"
    cv2.imwrite(str(two), np.hstack([one, one[:, ::-1]]))  # 240x160
    with server.client() as client:
        answer = client.post(
            "/api/remove",
            params={"subject": "60,120", "passes": "3"},
            files={"file": ("two.png", two.read_bytes(), "image/png")},
        )
        assert answer.status_code == 200, answer.text
        alpha = decode(answer.content)[..., 3].astype(float)
        assert alpha[:, :120].mean() > 40 and alpha[:, 120:].max() < 5  # the right one is gone
        missed = client.post(
            "/api/remove",
            params={"subject": "2,2", "passes": "1"},
            files={"file": ("two.png", two.read_bytes(), "image/png")},
        )
        assert_json_error(missed, 422, "no person at 2,2")
        wrong = client.post(
            "/api/remove", params={"subject": "2;x"}, files={"file": ("two.png", two.read_bytes(), "image/png")}
        )
        assert wrong.status_code == 400 and "subject" in wrong.json()["error"]
