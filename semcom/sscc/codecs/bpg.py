"""BPG through Fabrice Bellard's own ``bpgenc`` and ``bpgdec`` programs (run as subprocesses)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

from semcom.errors import SemcomError
from semcom.sscc.codecs.base import (
    CodecDecodeError,
    ImageCodec,
    Shape,
    check_opened_size,
    reference_image,
    template_mismatch,
)

__all__ = ["BpgCodec"]


_BPG_MAGIC = b"BPG\xfb"
_BPG_INSTALL = (
    "the BPG tools 'bpgenc' and 'bpgdec' are not on PATH. Install them (a 'libbpg' package where "
    "your distribution has one, or build libbpg from https://bellard.org/bpg/: 'make' then copy "
    "bpgenc and bpgdec onto PATH), or use the 'hevc-intra' codec: BPG's core HEVC intra coder "
    "through pillow-heif, installed with semcom"
)


def _bpg_prefix_length(data: bytes) -> int:
    """Length of the BPG file's magic, format bytes and ue7 width/height (Bellard's BPG spec 1.0)."""
    if data[:4] != _BPG_MAGIC or len(data) < 8:
        raise SemcomError("bpg: not a BPG file")
    i = 6
    for _ in range(2):  # picture_width, picture_height as ue7(32)
        for _ in range(5):
            if i >= len(data):
                raise SemcomError("bpg: truncated header")
            more = data[i] & 0x80
            i += 1
            if not more:
                break
        else:
            raise SemcomError("bpg: bad ue7 field")
    return i


class BpgCodec(ImageCodec):
    """BPG through Fabrice Bellard's ``bpgenc``/``bpgdec`` (subprocess, temporary files).

    ``quality`` = 51 - BPG's ``-q`` quantiser (``-q`` runs 0..51, lower is better), so higher is
    better; other settings are bpgenc's defaults (4:2:0, 8 bits, YCbCr, x265 where built in).
    Grayscale images go in as grayscale PNGs.

    Payload mode leaves out the first bytes of the file that are constant for the shape and
    configuration: the magic (4 bytes), the pixel-format/colour byte pair and the ue7 picture width
    and height (8 to 10 bytes in all), checked against a template on every encode. The rest of BPG's
    own small header (picture data length, compact HEVC header) is counted.

    Args:
        headers: see :class:`ImageCodec`.
        bpgenc, bpgdec: program names or paths.
        timeout: seconds allowed for one run of either program.

    Raises:
        SemcomError: ``bpgenc`` or ``bpgdec`` cannot be found (the message says how to install them).
    """

    name = "bpg"
    description = "BPG via Bellard's bpgenc/bpgdec (must be on PATH)"
    quality_range = (0, 51)

    def __init__(self, headers: str = "payload", bpgenc: str = "bpgenc", bpgdec: str = "bpgdec",
                 timeout: float = 60.0) -> None:
        super().__init__(headers)
        enc, dec = shutil.which(bpgenc), shutil.which(bpgdec)
        if enc is None or dec is None:
            raise SemcomError(f"bpg: {_BPG_INSTALL}")
        self._bpgenc, self._bpgdec, self._timeout = enc, dec, timeout

    def cache_key(self) -> str:
        return f"{super().cache_key()}:{self._bpgenc}"  # another installation may encode differently

    def _template(self, shape: Shape, quality: int) -> object:
        # Keyed by the programs too: two installations may write different headers.
        key = (type(self), self._bpgenc, *shape, quality)
        template = self._templates.get(key)
        if template is None:
            reference = self._encode_file(reference_image(shape), quality)
            template = reference[: _bpg_prefix_length(reference)]
            with self._templates_lock:
                self._templates[key] = template
        return template

    def _run(self, args: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(args, capture_output=True, timeout=self._timeout, check=False)

    def _encode_file(self, image: Image.Image, quality: int) -> bytes:
        with tempfile.TemporaryDirectory(prefix="semcom-bpg-") as tmp:
            src, dst = Path(tmp) / "in.png", Path(tmp) / "out.bpg"
            image.save(src, "PNG")
            done = self._run([self._bpgenc, "-q", str(51 - quality), "-o", str(dst), str(src)])
            if done.returncode != 0 or not dst.exists():
                message = done.stderr.decode(errors="replace").strip()
                raise SemcomError(f"bpg: bpgenc failed (exit {done.returncode}): {message}")
            return dst.read_bytes()

    def _decode_file(self, data: bytes, shape: Shape) -> Image.Image:
        with tempfile.TemporaryDirectory(prefix="semcom-bpg-") as tmp:
            src, dst = Path(tmp) / "in.bpg", Path(tmp) / "out.png"
            src.write_bytes(data)
            done = self._run([self._bpgdec, "-o", str(dst), str(src)])
            if done.returncode != 0 or not dst.exists():
                message = done.stderr.decode(errors="replace").strip()
                raise CodecDecodeError(f"bpg: bpgdec failed (exit {done.returncode}): {message}")
            image = Image.open(dst, formats=["PNG"])
            check_opened_size(image.size, shape, self.name)
            image.load()
            return image

    def _strip(self, data: bytes, template: object) -> bytes:
        assert isinstance(template, bytes)
        if data[: len(template)] != template or _bpg_prefix_length(data) != len(template):
            raise template_mismatch(self.name, "the BPG file prefix")
        return data[len(template) :]

    def _rebuild(self, payload: bytes, template: object) -> bytes:
        assert isinstance(template, bytes)
        return template + payload
