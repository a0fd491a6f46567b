#!/usr/bin/env python3
"""dpkg -x for machines without dpkg: extracts the data.tar.* of each .deb given into DEST.
   python3 extract_debs.py DEST a.deb b.deb ..."""
import io
import sys
import tarfile


def members(deb):
    with open(deb, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise ValueError(f"{deb}: not an ar archive")
        while True:
            h = f.read(60)
            if len(h) < 60:
                return
            name = h[:16].decode().strip().rstrip("/")
            size = int(h[48:58].decode().strip())
            data = f.read(size)
            if size % 2:
                f.read(1)
            yield name, data


def main():
    dest, debs = sys.argv[1], sys.argv[2:]
    for deb in debs:
        for name, data in members(deb):
            if name.startswith("data.tar"):
                if name.endswith(".zst"):
                    raise ValueError(f"{deb}: zstd data, not supported here")
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as t:
                    # like dpkg -x: trust the archive (Debian's own packages)
                    kw = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
                    t.extractall(dest, **kw)
                print(f"extracted {deb} ({name}) into {dest}")


if __name__ == "__main__":
    main()
