"""Just enough ELF and PE parsing for the release checks (scripts/dist-check, sbom.py):
sections, ELF program headers and dynamic entries, PE header fields, and the PE resources
(version info, manifest). Standard library only; reads the bytes, runs nothing.
"""

import struct

# ------------------------------------------------------------------ ELF (64-bit little-endian)

PT_INTERP, PT_DYNAMIC = 3, 2
DT_NEEDED = 1


def is_elf(data: bytes) -> bool:
    return data[:4] == b"\x7fELF"


def elf_info(data: bytes) -> dict:
    """Program header types, DT_NEEDED count, ELF type (3 = ET_DYN, i.e. PIE) and sections."""
    if not is_elf(data) or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    e_type, = struct.unpack_from("<H", data, 16)
    e_phoff, e_shoff = struct.unpack_from("<QQ", data, 32)
    e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHHHH", data, 54)
    phdrs = []
    for i in range(e_phnum):
        p_type, _flags, p_offset, _va, _pa, p_filesz = struct.unpack_from("<IIQQQQ", data, e_phoff + i * e_phentsize)
        phdrs.append((p_type, p_offset, p_filesz))
    needed = 0
    for p_type, off, size in phdrs:
        if p_type == PT_DYNAMIC:
            for j in range(0, size, 16):
                tag, _val = struct.unpack_from("<qQ", data, off + j)
                if tag == 0:
                    break
                needed += tag == DT_NEEDED
    sections = {}
    if e_shoff and e_shnum:
        shdr = lambda i: struct.unpack_from("<IIQQQQIIQQ", data, e_shoff + i * e_shentsize)
        str_off = shdr(e_shstrndx)[4]
        for i in range(e_shnum):
            name_off, _t, _f, _a, off, size = shdr(i)[:6]
            end = data.index(b"\0", str_off + name_off)
            sections[data[str_off + name_off:end].decode()] = data[off:off + size]
    return {"type": e_type, "phdr_types": [p[0] for p in phdrs], "needed": needed, "sections": sections}


# ------------------------------------------------------------------ PE (PE32+)

RT_VERSION, RT_MANIFEST = 16, 24


def is_pe(data: bytes) -> bool:
    return data[:2] == b"MZ"


def pe_info(data: bytes) -> dict:
    """Timestamp, machine, sections (name -> (virtual address, bytes)), certificate table."""
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe:pe + 4] != b"PE\0\0":
        raise ValueError("no PE signature")
    machine, nsec, timestamp = struct.unpack_from("<HHI", data, pe + 4)
    opt_size, = struct.unpack_from("<H", data, pe + 20)
    opt = pe + 24
    magic, = struct.unpack_from("<H", data, opt)
    if magic != 0x20B:
        raise ValueError("not PE32+")
    checksum, = struct.unpack_from("<I", data, opt + 64)
    # Data directories start at 112 in a PE32+ optional header; 4 = certificate table.
    cert_off, cert_size = struct.unpack_from("<II", data, opt + 112 + 4 * 8)
    sections = {}
    for i in range(nsec):
        s = opt + opt_size + i * 40
        name = data[s:s + 8].rstrip(b"\0").decode(errors="replace")
        vsize, va, raw_size, raw_off = struct.unpack_from("<IIII", data, s + 8)
        sections[name] = (va, data[raw_off:raw_off + min(vsize, raw_size) if vsize else raw_size])
    return {
        "machine": machine,
        "timestamp": timestamp,
        "checksum": checksum,
        "cert_table": (cert_off, cert_size),
        "sections": sections,
    }


def pe_resources(data: bytes) -> dict:
    """{(type, name, lang): bytes} from .rsrc (numeric ids only, which is all windres writes)."""
    va, rsrc = pe_info(data)["sections"][".rsrc"]
    out = {}

    def walk(off: int, path: tuple) -> None:
        named, ids = struct.unpack_from("<HH", rsrc, off + 12)
        for i in range(named + ids):
            ident, child = struct.unpack_from("<II", rsrc, off + 16 + 8 * i)
            key = path + (ident,)
            if child & 0x80000000:
                walk(child & 0x7FFFFFFF, key)
            else:
                data_rva, size = struct.unpack_from("<II", rsrc, child)
                out[key] = rsrc[data_rva - va:data_rva - va + size]

    walk(0, ())
    return out


def _align4(n: int) -> int:
    return (n + 3) & ~3


def _block(buf: bytes, off: int):
    """One VS_VERSIONINFO-style block: (key, value bytes, value is text, children, end)."""
    length, value_len, is_text = struct.unpack_from("<HHH", buf, off)
    key_start = off + 6
    key_end = key_start
    while buf[key_end:key_end + 2] != b"\0\0":
        key_end += 2
    key = buf[key_start:key_end].decode("utf-16-le")
    value_off = _align4(key_end + 2)
    value_bytes = value_len * 2 if is_text else value_len
    value = buf[value_off:value_off + value_bytes]
    child = _align4(value_off + value_bytes)
    end = off + length
    children = []
    while child < end:
        c = _block(buf, child)
        children.append(c)
        child = _align4(c[4])
    return key, value, is_text, children, end


def version_info(data: bytes) -> dict:
    """The version resource: fixed file/product versions and the StringFileInfo strings."""
    res = [v for k, v in pe_resources(data).items() if k[0] == RT_VERSION]
    if not res:
        raise ValueError("no version resource (RT_VERSION)")
    key, fixed, _, children, _ = _block(res[0], 0)
    if key != "VS_VERSION_INFO":
        raise ValueError(f"version resource starts with {key!r}")
    sig, _sv, fv_ms, fv_ls, pv_ms, pv_ls = struct.unpack_from("<IIIIII", fixed, 0)
    if sig != 0xFEEF04BD:
        raise ValueError("bad VS_FIXEDFILEINFO signature")
    ver = lambda ms, ls: f"{ms >> 16}.{ms & 0xFFFF}.{ls >> 16}.{ls & 0xFFFF}"
    strings = {}
    for ckey, _, _, tables, _ in children:
        if ckey == "StringFileInfo":
            for _lang, _, _, entries, _ in tables:
                for name, value, _, _, _ in entries:
                    strings[name] = value.decode("utf-16-le").rstrip("\0")
    return {"file_version": ver(fv_ms, fv_ls), "product_version": ver(pv_ms, pv_ls), "strings": strings}


def manifest(data: bytes) -> str:
    res = [v for k, v in pe_resources(data).items() if k[0] == RT_MANIFEST]
    if not res:
        raise ValueError("no application manifest (RT_MANIFEST)")
    return res[0].decode("utf-8")


def section(data: bytes, name: str) -> bytes:
    """A section's bytes from an ELF or PE file, or b"" if there is none."""
    if is_elf(data):
        return elf_info(data)["sections"].get(name, b"")
    if is_pe(data):
        return pe_info(data)["sections"].get(name, (0, b""))[1]
    raise ValueError("neither ELF nor PE")
