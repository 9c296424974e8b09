"""Small helpers shared by the reader and the writer: file sniffing and error wording."""

from __future__ import annotations

from pathlib import Path

import av

# First bytes of container formats FFmpeg reads. A file that starts like one of these but
# cannot be opened is almost always cut short or damaged, not "some other kind of file",
# and the user deserves to be told the difference.
_MAGIC_AT_0 = (
    b"\x1a\x45\xdf\xa3",  # Matroska / WebM (EBML)
    b"RIFF",  # AVI
    b"OggS",  # Ogg
    b"FLV",  # Flash video
    b"\x30\x26\xb2\x75",  # ASF / WMV
    b"\x00\x00\x01\xba",  # MPEG program stream
)
_ISO_BOX_TYPES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")


def looks_like_video_container(path: Path) -> bool:
    """True when the file's first bytes match a known video container signature."""
    try:
        with open(path, "rb") as f:
            head = f.read(189)
    except OSError:
        return False
    if head[4:8] in _ISO_BOX_TYPES:  # MP4 / MOV / 3GP: a size, then a box type
        return True
    if len(head) == 189 and head[0] == head[188] == 0x47:  # MPEG-TS: sync byte every 188
        return True
    return any(head.startswith(m) for m in _MAGIC_AT_0)


def av_reason(error: BaseException) -> str:
    """FFmpeg's own short reason for an error, without PyAV's errno and file-name decoration."""
    if isinstance(error, av.FFmpegError) and error.strerror:
        return str(error.strerror).rstrip(".").lower()
    return str(error) or type(error).__name__
