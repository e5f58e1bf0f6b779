#!/usr/bin/env python3
"""What a WAL frame costs to write, the way SQLite writes it and merged.

SQLite writes each write-ahead-log frame with two pwrite calls (a 24-byte
header, then the 4 KiB page); the relay's WAL-buffering VFS
(retalk-server/src/storage/sqlite/wal_buffer.rs) hands a commit's frames on
as one. This times both on the file system of DIR, per frame:

    python3 retalk-bench/pwrite_cost.py [DIR] [FRAMES]
    python3 retalk-bench/pwrite_cost.py /tmp 20000

The file (16 MiB, rewritten in place like a WAL after a checkpoint) is
deleted afterwards. Python adds about half a microsecond per call to both.
"""
import os
import sys
import tempfile
import time

PAGE, HEADER, GROUP, SPAN = 4096, 24, 20, 16 << 20


def main() -> None:
    where = sys.argv[1] if len(sys.argv) > 1 else tempfile.gettempdir()
    frames = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    page, header = b"p" * PAGE, b"h" * HEADER
    merged = (header + page) * GROUP
    fd, path = tempfile.mkstemp(dir=where, prefix="pwrite-cost-")
    try:
        os.pwrite(fd, b"\0" * SPAN, 0)
        for round_ in (1, 2):
            start, off = time.perf_counter(), 0
            for _ in range(frames):
                os.pwrite(fd, header, off)
                os.pwrite(fd, page, off + HEADER)
                off = (off + HEADER + PAGE) % SPAN
            two = (time.perf_counter() - start) / frames
            start, off = time.perf_counter(), 0
            for _ in range(frames // GROUP):
                os.pwrite(fd, merged, off)
                off = (off + len(merged)) % SPAN
            one = (time.perf_counter() - start) / (frames // GROUP * GROUP)
            print(
                f"round {round_}: per frame, two pwrites {two * 1e6:.2f} µs; "
                f"{GROUP} frames in one pwrite {one * 1e6:.2f} µs"
            )
    finally:
        os.close(fd)
        os.unlink(path)


if __name__ == "__main__":
    main()
