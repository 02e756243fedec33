"""The payload handling shared by the codecs whose files are ISOBMFF containers: HEVC (HEIF) and AVIF.

In ``headers="payload"`` mode the whole container and the constant start of the coded stream (the
parameter units, the NAL or OBU header) come from the receiver's template; a subclass says where
its coded stream's constant prefix ends.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

from semcom.sscc.codecs.base import ImageCodec, Shape, template_mismatch
from semcom.sscc.codecs.isobmff import Container

__all__ = ["IsoBmffCodec"]


@dataclass(frozen=True)
class _IsoTemplate:
    container: Container
    stream_prefix: bytes  # constant start of the coded stream (parameter units, NAL/OBU header)


class IsoBmffCodec(ImageCodec):
    """Shared payload handling of HEIF and AVIF: container and stream prefix come from a template."""

    @abstractmethod
    def _split_stream(self, stream: bytes) -> tuple[bytes, bytes]:
        """(constant prefix, payload) of the coded stream."""

    @abstractmethod
    def _join_stream(self, prefix: bytes, payload: bytes) -> bytes:
        """Inverse of :meth:`_split_stream`."""

    def _make_template(self, reference_file: bytes, shape: Shape, quality: int) -> _IsoTemplate:
        container, stream = Container.parse(reference_file)
        return _IsoTemplate(container, self._split_stream(stream)[0])

    def _strip(self, data: bytes, template: object) -> bytes:
        assert isinstance(template, _IsoTemplate)
        container, stream = Container.parse(data)
        if container != template.container:
            raise template_mismatch(self.name, "the container (with its parameter sets)")
        prefix, payload = self._split_stream(stream)
        if prefix != template.stream_prefix:
            raise template_mismatch(self.name, "the constant start of the coded stream")
        return payload

    def _rebuild(self, payload: bytes, template: object) -> bytes:
        assert isinstance(template, _IsoTemplate)
        return template.container.join(self._join_stream(template.stream_prefix, payload))
