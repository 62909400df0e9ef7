"""Pages of the documentation site that are generated from the sources, so they cannot drift from them.

An MkDocs hook (``hooks:`` in ``mkdocs.yml``): a page line ``<!-- generated: NAME -->`` is replaced by
``GENERATORS[NAME]()`` when the site is built. Also importable (``tests/test_docs.py`` checks the generated
text without MkDocs).

- ``c-api``: every declaration of ``include/tritonlite.h`` between the API markers, with its comment;
- ``java-api``: every public class and member of ``java/src/main/java/org/tritonlite``, with its Javadoc;
- ``serve-options``: the options of ``tritonlite serve`` from its argparse parser;
- ``examples``: one line per folder of ``examples/`` (its README's first paragraph or its client's docstring);
- ``benchmarks``: ``benchmarks/README.md``.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the tree's own tritonlite, whatever is installed
    sys.path.insert(0, str(ROOT))

MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.M)
HEADER = ROOT / "include" / "tritonlite.h"
JAVA_SOURCES = ROOT / "java" / "src" / "main" / "java" / "org" / "tritonlite"
EXAMPLES = ROOT / "examples"
BENCHMARKS = ROOT / "benchmarks" / "README.md"
GITHUB_FILES = "../.."  # relative links from a page to repository files are not site pages: shown as code


# ---- C: include/tritonlite.h ---------------------------------------------------------------------------------
@dataclass
class CDecl:
    """One declaration of the header's API block: a function, a type or a macro."""

    kind: str  # "function", "type" or "macro"
    name: str
    code: str
    doc: str
    section: str


def _comment_text(comment: str) -> str:
    body = comment.strip()[2:-2]
    lines = [re.sub(r"^\s*\*\s?", "", line).rstrip() for line in body.splitlines()]
    return " ".join(line.strip() for line in lines if line.strip())


def c_declarations(header: Path = HEADER) -> list[CDecl]:
    """The declarations between TRITONLITE_API_BEGIN and TRITONLITE_API_END, in header order, each with the
    comment block just above it (and a comment after it on the same line); ``/* ---- X ---- */`` opens section X."""
    text = header.read_text()
    m = re.search(r"^/\* TRITONLITE_API_BEGIN.*?\*/\n(.*)^/\* TRITONLITE_API_END", text, re.S | re.M)
    if m is None:
        raise ValueError(f"{header}: API markers not found")
    block = m.group(1)
    out: list[CDecl] = []
    section = "Constants and types"
    pending: list[str] = []
    pos = 0
    token = re.compile(r"/\*.*?\*/|#define[^\n]*|[^;/#]+(?:/(?!\*)[^;/#]*)*(?:/\*.*?\*/[^;/#]*)*;", re.S)
    while pos < len(block):
        ws = re.match(r"\s*", block[pos:])
        pos += ws.end() if ws else 0
        if pos >= len(block):
            break
        t = token.match(block, pos)
        if t is None:
            raise ValueError(f"cannot read the header near: {block[pos:pos + 80]!r}")
        piece = t.group(0)
        pos = t.end()
        if piece.startswith("/*"):
            sec = re.fullmatch(r"/\*\s*-{2,}\s*(.*?)\s*-{2,}\s*\*/", piece.strip())
            if sec:
                section = sec.group(1)[0].upper() + sec.group(1)[1:]
                pending = []
            else:
                pending.append(_comment_text(piece))
            continue
        # a comment on the same line, right after the declaration, documents it too
        trailing = re.match(r"[ \t]*(/\*.*?\*/)", block[pos:])
        doc = " ".join(pending)
        if trailing and "\n" not in trailing.group(0):
            doc = (doc + " " + _comment_text(trailing.group(1))).strip()
            pos += trailing.end()
        pending = []
        code = piece.strip()
        if code.startswith("#define") and "/*" in code:
            code, comment = code.split("/*", 1)
            code = code.strip()
            doc = (doc + " " + _comment_text("/*" + comment)).strip()
        if code.startswith("#define"):
            out.append(CDecl("macro", code.split()[1], code, doc, section))
        elif code.startswith("typedef"):
            name = re.findall(r"(TRITONLITE_\w+)", code.replace("(*", " "))
            typename = re.search(r"\(\*\s*(TRITONLITE_\w+)\)", code) or re.search(r"(TRITONLITE_\w+)\s*;\s*$", code)
            out.append(CDecl("type", typename.group(1) if typename else name[-1], code, doc, section))
        else:
            fn = re.search(r"(TRITONLITE_\w+)\s*\(", code)
            if fn is None:
                raise ValueError(f"cannot read the declaration: {code!r}")
            out.append(CDecl("function", fn.group(1), code, doc, section))
    return out


def c_api_markdown() -> str:
    decls = c_declarations()
    lines: list[str] = []
    section = None
    for d in decls:
        if d.section != section:
            section = d.section
            lines += [f"## {section}", ""]
        lines += [f"### `{d.name}`", "", "```c", _reindent(d.code), "```", ""]
        if d.doc:
            lines += [_md_escape(d.doc), ""]
    return "\n".join(lines)


def _reindent(code: str) -> str:
    first, *rest = code.splitlines()
    indent = min((len(r) - len(r.lstrip()) for r in rest if r.strip()), default=0)
    return "\n".join([first, *("    " + r[indent:] if r.strip() else r for r in rest)])


def _md_escape(text: str) -> str:
    """Header prose as Markdown: identifiers stay readable, ``*`` and ``_`` are not emphasis."""
    text = re.sub(r"(\w+\*+|\bTRITONLITE_\w+|\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\")", r"`\1`", text)
    return text.replace("``", "")


# ---- Java: org.tritonlite --------------------------------------------------------------------------------------
@dataclass
class JavaMember:
    signature: str
    doc: str


@dataclass
class JavaType:
    name: str
    kind: str
    signature: str
    doc: str
    members: list[JavaMember] = field(default_factory=list)


_JAVADOC = re.compile(r"/\*\*(.*?)\*/", re.S)


def _inline_tags(text: str) -> str:
    """``{@code x}`` / ``{@link X#y}`` (braces inside balanced) -> Markdown code."""
    out, i = [], 0
    while True:
        m = re.compile(r"\{@(?:code|link|linkplain|literal)\s+").search(text, i)
        if m is None:
            out.append(text[i:])
            return "".join(out)
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        ref = text[m.end():j - 1].strip().replace("`", "'")
        ref = re.sub(r"^#", "", ref).replace("#", ".") if m.group(0).startswith("{@link") else ref
        out += [text[i:m.start()], "`" + ref + "`"]
        i = j


def _escape_prose(text: str) -> str:
    """Brackets outside code spans would be read as Markdown links."""
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(p if p.startswith("`") else p.replace("[", "\\[").replace("]", "\\]") for p in parts)


def _javadoc_text(raw: str, *, blocks: bool = False) -> str:
    """Javadoc as Markdown: one paragraph (``blocks``: ``<pre>`` sections become fenced Java code)."""
    lines = [re.sub(r"^\s*\*( ?)", "", line) for line in raw.splitlines()]
    text = "\n".join(lines)
    pieces = re.split(r"<pre>\s*(?:\{@code)?(.*?)(?:\}\s*)?</pre>", text, flags=re.S)
    out = []
    for k, piece in enumerate(pieces):
        if k % 2:  # a <pre> block
            code = "\n".join(line.rstrip() for line in piece.strip("\n").splitlines())
            out.append(f"\n\n```java\n{code}\n```\n\n" if blocks else f" `{' '.join(code.split())}` ")
            continue
        prose = _inline_tags(piece)
        prose = re.sub(r"</?(?:p|ul|li|b|i|em)>", " ", prose)
        out.append(_escape_prose(" ".join(prose.split())))
    return "".join(out).strip()


def java_types(source_dir: Path = JAVA_SOURCES) -> list[JavaType]:
    """Every public top-level type of the package with its public (and interface) members, from the sources."""
    out: list[JavaType] = []
    for path in sorted(source_dir.glob("*.java")):
        text = path.read_text()
        head = re.search(r"((?:/\*\*.*?\*/\s*)?)((?:@\w+\s*)*)public\s+(?:final\s+|abstract\s+)*(class|interface|enum)\s+(\w+)([^{]*)\{", text, re.S)
        if head is None:
            continue
        kind, name = head.group(3), head.group(4)
        doc = _javadoc_text(_JAVADOC.search(head.group(1)).group(1), blocks=True) if head.group(1).strip() else ""
        jt = JavaType(name, kind, f"public {kind} {name}{' ' + ' '.join(head.group(5).split()) if head.group(5).strip() else ''}", doc)
        body = text[head.end():]
        depth = 0
        i = 0
        last_doc = ""
        # walk the type's body at depth 0 (members), skipping method bodies and nested blocks
        while i < len(body):
            if body.startswith("/**", i):
                end = body.index("*/", i) + 2
                last_doc = _javadoc_text(body[i + 3:end - 2]) if depth == 0 else last_doc
                i = end
                continue
            if body.startswith("/*", i):
                i = body.index("*/", i) + 2
                continue
            if body.startswith("//", i):
                i = body.index("\n", i)
                continue
            if body[i] == '"':
                i = body.index('"', i + 1) + 1
                while body[i - 2] == "\\":
                    i = body.index('"', i) + 1
                continue
            if body[i] == "{":
                depth += 1
            elif body[i] == "}":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and body[i] not in " \t\r\n":
                stmt_end = re.compile(r"[;{]").search(body, i)
                if stmt_end is None:
                    break
                decl = " ".join(re.sub(r"@\w+(\([^)]*\))?\s*", "", body[i:stmt_end.start()]).split())
                public = decl.startswith("public ") or (kind == "interface" and not decl.startswith(("private ", "static {")))
                if public and decl and not decl.startswith("public static final class"):
                    jt.members.append(JavaMember(decl.rstrip("= ").split(" =")[0], last_doc))
                last_doc = ""
                i = stmt_end.start()
                if body[i] == ";":
                    i += 1
                continue
            i += 1
        out.append(jt)
    return out


def java_member_name(signature: str) -> str:
    """``public static Tensor ofFloats(long[] shape, float... data)`` -> ``ofFloats``; a field -> its name."""
    m = re.search(r"(\w+)\s*\(", signature)
    return m.group(1) if m else signature.split()[-1]


def java_api_markdown() -> str:
    lines: list[str] = []
    for t in java_types():
        lines += [f"## `{t.name}`", "", f"`{t.signature}`", ""]
        if t.doc:
            lines += [t.doc, ""]
        if t.members:
            lines += ["| member | what it does |", "|---|---|"]
            for m in t.members:
                sig = m.signature.replace("public ", "", 1).replace("|", "\\|")
                lines.append(f"| `{sig}` | {m.doc.replace('|', chr(92) + '|') or '—'} |")
            lines.append("")
    return "\n".join(lines)


# ---- tritonlite serve ------------------------------------------------------------------------------------------
def serve_options() -> list[dict[str, Any]]:
    """Every documented option of ``tritonlite serve``: flags, metavar/choices, default, help."""
    import argparse

    from tritonlite.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    serve = sub.choices["serve"]
    out = []
    for action in serve._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        if action.choices:
            value = "{" + ",".join(str(c) for c in action.choices) + "}"
        else:
            value = action.metavar or getattr(action.type, "__name__", None) or "VALUE"
        out.append({"flags": list(action.option_strings), "value": str(value).upper() if value in ("int", "float") else value,
                    "default": action.default, "help": action.help or "",
                    "repeatable": isinstance(action, argparse._AppendAction)})
    return out


def serve_options_markdown() -> str:
    lines = ["| option | value | default | what it does |", "|---|---|---|---|"]
    for o in serve_options():
        flags = ", ".join(f"`{f}`" for f in o["flags"])
        default = o["default"]
        shown = "—" if default in (None, [], "") else f"`{default}`"
        what = o["help"] + (" (repeatable)" if o["repeatable"] and "repeatable" not in o["help"] else "")
        lines.append(f"| {flags} | `{o['value']}` | {shown} | {what.replace('|', chr(92) + '|')} |")
    return "\n".join(lines) + "\n"


# ---- examples ----------------------------------------------------------------------------------------------
def example_dirs() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _first_paragraph(markdown: str) -> str:
    para: list[str] = []
    for line in markdown.splitlines():
        if line.startswith("#") or line.startswith("```"):
            if para:
                break
            continue
        if not line.strip():
            if para:
                break
            continue
        para.append(line.strip())
    return " ".join(para)


def example_summary(folder: Path) -> str:
    """The README's first paragraph, else the first line of a Python file's docstring, else of a C/Java comment."""
    readme = folder / "README.md"
    if readme.exists():
        text = _first_paragraph(readme.read_text())
        if text:
            return text
    for py in sorted(folder.glob("*.py"), key=lambda p: (p.name != "client.py", p.name)):
        doc = ast.get_docstring(ast.parse(py.read_text()))
        if doc:
            return doc.strip().split("\n\n")[0].replace("\n", " ")
    for src in sorted([*folder.rglob("*.c"), *folder.rglob("*.java")]):
        m = re.search(r"/\*+(.*?)\*/", src.read_text(), re.S)
        if m:
            return _comment_text("/*" + m.group(1) + "*/").split(". ")[0] + "."
    return ""


def examples_markdown() -> str:
    lines = ["| example | what it shows | files |", "|---|---|---|"]
    for folder in example_dirs():
        files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in (".py", ".c", ".md", ".json", ".yml", ".toml") or p.name == "Makefile")
        files += sorted(str(p.relative_to(folder)) for p in folder.rglob("*.java"))
        summary = example_summary(folder) or "—"
        lines.append(f"| `examples/{folder.name}/` | {summary.replace('|', chr(92) + '|')} | {', '.join(f'`{f}`' for f in files)} |")
    return "\n".join(lines) + "\n"


# ---- benchmarks --------------------------------------------------------------------------------------------
def benchmarks_markdown() -> str:
    """benchmarks/README.md without its title (the page has its own)."""
    text = BENCHMARKS.read_text()
    return re.sub(r"\A# [^\n]*\n", "", text)


GENERATORS: dict[str, Callable[[], str]] = {
    "c-api": c_api_markdown,
    "java-api": java_api_markdown,
    "serve-options": serve_options_markdown,
    "examples": examples_markdown,
    "benchmarks": benchmarks_markdown,
}


def render(markdown: str) -> str:
    """Replace every ``<!-- generated: NAME -->`` line; an unknown NAME is an error."""

    def one(m: re.Match[str]) -> str:
        if m.group(1) not in GENERATORS:
            raise KeyError(f"unknown generated section '{m.group(1)}' (known: {', '.join(GENERATORS)})")
        return GENERATORS[m.group(1)]()

    return MARKER.sub(one, markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:  # MkDocs hook
    return render(markdown)
