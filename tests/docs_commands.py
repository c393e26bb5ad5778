#!/usr/bin/env python3
"""Runs the shell blocks of a Markdown page as written, in a scratch copy of a checkout (CTest DocsCommands.*).

A fenced block whose language is sh, bash or shell is a command block. It runs as one bash script
(set -euo pipefail) in SCRATCH/checkout, which looks like a fresh clone after `make build`: build/ is the build
folder, models/ and scripts/ and examples/ are the committed ones, docs/ is empty (pages write pictures there) and
../shared is the shared folder. The blocks of a page run in order in the same folder, so a block may use the
files an earlier block made. A failure names the page, the block and the line.

An HTML comment on the line before a block's fence changes what is done with it:
  <!-- docs-test: skip: REASON -->          not run (inherently long: REASON says why); counted as skipped
  <!-- docs-test: dry-run: REASON -->       each pidistill command runs with --dry-run appended (its options
                                           and input files are checked; the long run is not done)
  <!-- docs-test: reproduces FILE... -->   run, then each FILE the block wrote must equal the committed FILE
                                           byte for byte (for PNGs the message counts the differing pixels)
  <!-- docs-test: own-test NAME: REASON -->  run only by `--own-test NAME` (its own CTest), self-contained
A `console` block is shown output, not run (counted as skipped).
"""
import argparse
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib

SHELL_LANGS = {"sh", "bash", "shell"}
FENCE = re.compile(r"^```\s*([A-Za-z0-9_+-]*)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->\s*$")


class Block:
    def __init__(self, index, lang, start_line, lines, directives):
        self.index = index  # 1-based among the page's fenced blocks
        self.lang = lang
        self.start_line = start_line  # page line of the first line inside the fence
        self.lines = lines
        self.directives = directives  # list of (kind, argument)

    def directive(self, kind):
        for k, arg in self.directives:
            if k == kind:
                return arg
        return None


def parse_directive(text, page, line_no):
    m = re.match(r"^(skip|dry-run|own-test|reproduces)\b\s*:?\s*(.*)$", text)
    if not m:
        raise SystemExit(f"{page}:{line_no}: unknown docs-test directive '{text}' "
                         "(skip: | dry-run: | reproduces FILE... | own-test NAME:)")
    return m.group(1), m.group(2).strip()


def read_blocks(path, page):
    blocks, pending, in_block = [], [], None
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for no, line in enumerate(lines, 1):
        if in_block is not None:
            if line.strip() == "```":
                blocks.append(in_block)
                in_block = None
            else:
                in_block.lines.append(line)
            continue
        m = FENCE.match(line)
        if m:
            in_block = Block(len(blocks) + 1, m.group(1).lower(), no + 1, [], pending)
            pending = []
            continue
        d = DIRECTIVE.match(line.strip())
        if d:
            pending.append(parse_directive(d.group(1), page, no))
        elif line.strip():
            if pending:
                raise SystemExit(f"{page}:{no}: a docs-test comment must be right above a fenced block")
    if in_block is not None:
        raise SystemExit(f"{page}:{in_block.start_line - 1}: fenced block never closed")
    return blocks


def make_checkout(scratch, source, build):
    """SCRATCH/checkout: a fresh clone after `make build`, as far as the pages can tell."""
    source = os.path.abspath(source)
    if os.path.exists(scratch):
        shutil.rmtree(scratch)
    checkout = os.path.join(scratch, "checkout")
    os.makedirs(os.path.join(checkout, "docs"))
    os.symlink(os.path.abspath(build), os.path.join(checkout, "build"))
    for name in ("scripts", "examples", "Makefile", "CMakeLists.txt"):
        if os.path.exists(os.path.join(source, name)):
            os.symlink(os.path.join(source, name), os.path.join(checkout, name))
    # models/: one link per committed file, so a page that writes into models/ makes a new file here.
    os.makedirs(os.path.join(checkout, "models"))
    for name in sorted(os.listdir(os.path.join(source, "models"))):
        os.symlink(os.path.join(source, "models", name), os.path.join(checkout, "models", name))
    shared = os.path.join(source, "..", "shared")
    if os.path.isdir(shared):
        os.symlink(os.path.abspath(shared), os.path.join(scratch, "shared"))
    return checkout


def with_dry_run(lines):
    """Appends --dry-run to every pidistill command (after its last continuation line, before a comment)."""
    out, in_command, is_pidistill = [], False, False
    for line in lines:
        stripped = line.strip()
        if not in_command and (not stripped or stripped.startswith("#")):
            out.append(line)
            continue
        if not in_command:
            is_pidistill = "pidistill " in line
            if not is_pidistill:
                raise ValueError(f"'{stripped}' is not a pidistill command (dry-run blocks hold only those)")
        if line.rstrip().endswith("\\"):
            in_command = True
            out.append(line)
            continue
        in_command = False
        code, hash_, comment = line.partition("  #")
        out.append(code.rstrip() + " --dry-run" + (("  #" + comment) if hash_ else ""))
    return out


def png_pixels(path):
    """(width, height, channels, bytes) of an 8-bit non-interlaced grey/RGB(A) PNG, as our writer makes."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"{path}: only 8-bit non-interlaced grey/RGB PNGs are compared")
    raw, stride, bpp = zlib.decompress(idat), width * channels, channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        filt, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            if filt == 1:
                line[x] = (line[x] + a) & 255
            elif filt == 2:
                line[x] = (line[x] + b) & 255
            elif filt == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, b"".join(rows)


def compare_file(made, committed):
    """None when equal, else what differs."""
    if not os.path.exists(made):
        return f"the block did not write {made}"
    with open(made, "rb") as a, open(committed, "rb") as b:
        if a.read() == b.read():
            return None
    if not committed.endswith(".png"):
        return "bytes differ"
    wa, ha, ca, pa = png_pixels(made)
    wb, hb, cb, pb = png_pixels(committed)
    if (wa, ha, ca) != (wb, hb, cb):
        return f"{wa}x{ha}x{ca} against the committed {wb}x{hb}x{cb}"
    diffs = [abs(x - y) for x, y in zip(pa, pb) if x != y]
    # Another CPU (AVX2 instead of AVX-512 kernels) rounds float32 elsewhere: a few pixel values then land one
    # 8-bit step away (2 of 65536 on an AMD EPYC). More than that is a real difference.
    if diffs and max(diffs) <= 1 and len(diffs) <= len(pa) // 1000:
        print(f"  {os.path.basename(made)}: {len(diffs)} of {len(pa)} pixel values one step off the committed file "
              "(float32 rounding of another CPU's kernels; README: Determinism)")
        return None
    return (f"{len(diffs)} of {len(pa)} pixel values differ (at most by {max(diffs) if diffs else 0}); "
            "a different CPU or LibTorch can pick other float32 kernels (README: Determinism)")


def run_block(block, lines, checkout, page, timeout, env):
    """Runs the block's lines as one bash script; returns None or a failure message naming the line."""
    trace = os.path.join(checkout, "..", f"block{block.index}.trace")
    header = ['set -euo pipefail', f'exec 9>"{trace}"', 'BASH_XTRACEFD=9', "PS4='+${LINENO}: '",
              "trap 'echo \"docs-test-failed-line=$LINENO\" >&2' ERR", 'set -x']
    script = "\n".join(header + lines) + "\n"
    page_line = lambda script_line: block.start_line + script_line - len(header) - 1
    t0 = time.time()
    try:
        r = subprocess.run(["timeout", "--kill-after=10", str(timeout), "bash", "-c", script], cwd=checkout,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           errors="replace")
    except OSError as e:
        return f"{page}: block {block.index}: cannot run bash: {e}", 0
    seconds = time.time() - t0
    output = r.stdout
    sys.stdout.write("".join("    | " + l + "\n" for l in output.rstrip("\n").split("\n")[-15:] if l))
    if r.returncode == 0:
        return None, seconds
    failed = re.findall(r"docs-test-failed-line=(\d+)", output)
    if failed:
        where = page_line(int(failed[-1]))
    else:  # killed (timeout): the last line the trace shows started
        started = re.findall(r"^\++(\d+): ", open(trace, errors="replace").read(), re.M) if os.path.exists(
            trace) else []
        where = page_line(int(started[-1])) if started else block.start_line
    i = max(0, min(where - block.start_line, len(block.lines) - 1))
    while i > 0 and block.lines[i - 1].rstrip().endswith("\\"):  # bash names a line inside the command
        i -= 1
    where, text, j = block.start_line + i, block.lines[i].strip(), i
    while block.lines[j].rstrip().endswith("\\") and j + 1 < len(block.lines):
        j += 1
        text = text[:-1].rstrip() + " " + block.lines[j].strip()
    why = f"timed out after {timeout} s" if r.returncode in (124, 137) else f"exit status {r.returncode}"
    return f"{page}:{where}: block {block.index}, line {where - block.start_line + 1}: {why}: {text}", seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", required=True, help="the checkout whose pages are run")
    ap.add_argument("--build", required=True, help="the build folder (holds pidistill)")
    ap.add_argument("--page", required=True, help="page path relative to --source, e.g. README.md")
    ap.add_argument("--scratch", required=True, help="folder to run in (emptied first)")
    ap.add_argument("--timeout", type=int, default=240, help="seconds per block")
    ap.add_argument("--own-test", default="", help="run only the blocks marked own-test NAME")
    ap.add_argument("--list", action="store_true", help="print the blocks and what would be done, run nothing")
    a = ap.parse_args()

    page = a.page
    blocks = read_blocks(os.path.join(a.source, page), page)
    shell = [b for b in blocks if b.lang in SHELL_LANGS or b.lang == "console"]
    others = [b for b in blocks if b not in shell]
    checkout = None if a.list else make_checkout(a.scratch, a.source, a.build)
    env = dict(os.environ)
    ran, dry, skipped, failures = 0, 0, [], []
    for b in shell:
        own = b.directive("own-test")
        own_name, _, own_reason = (own or "").partition(":")
        label = f"{page}:{b.start_line - 1} block {b.index}"
        if a.own_test:
            if own_name.strip() != a.own_test:
                continue
        elif b.lang == "console":
            skipped.append((label, "console block: shown output, not a command"))
            continue
        elif b.directive("skip") is not None:
            skipped.append((label, b.directive("skip")))
            continue
        elif own is not None:
            skipped.append((label, f"run by its own CTest DocsCommands.{own_name.strip()}: {own_reason.strip()}"))
            continue
        lines = b.lines
        mode = "run"
        if b.directive("dry-run") is not None:
            mode = "dry-run (" + b.directive("dry-run") + ")"
            try:
                lines = with_dry_run(b.lines)
            except ValueError as e:
                failures.append(f"{label}: {e}")
                continue
        if a.list:
            print(f"{label}: {mode}")
            ran += 1
            dry += mode != "run"
            continue
        print(f"{label}: {mode}", flush=True)
        failure, seconds = run_block(b, lines, checkout, page, a.timeout, env)
        print(f"  {seconds:.1f} s", flush=True)
        if failure is None and b.directive("reproduces"):
            for name in b.directive("reproduces").split():
                diff = compare_file(os.path.join(checkout, name), os.path.join(a.source, name))
                if diff:
                    failure = f"{label}: {name} is not the committed picture: {diff}"
                else:
                    print(f"  {name}: matches the committed file")
        ran += 1
        dry += mode != "run"
        if failure:
            failures.append(failure)
            break  # later blocks may need this one's files
    if a.own_test and ran == 0:
        failures.append(f"{page}: no block is marked 'own-test {a.own_test}'")
    print(f"{page}: {len(shell)} shell block(s): {ran} {'listed' if a.list else 'ran'}"
          + (f" ({dry} with --dry-run)" if dry else "") + f", {len(skipped)} skipped"
          + (f"; {len(others)} block(s) in other languages ({', '.join(b.lang or 'plain' for b in others)}) "
             "are not commands" if others else ""))
    for label, reason in skipped:
        print(f"  skipped {label}: {reason}")
    for f in failures:
        print("FAILED " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
