"""Reading an axis file safely: its size checked before it is read, UTF-8, JSON or YAML (libyaml's safe
loader where installed) with the line of a syntax error, and YAML aliases sized from the composed node graph
before they are expanded (an alias bomb is refused in milliseconds). :mod:`lftf_interp.data.axis` validates
what this returns."""

from __future__ import annotations

import json
import reprlib
from pathlib import Path

import yaml

from lftf_interp.data.datasets import visible
from lftf_interp.errors import DatasetError

LABELS = {"bias": "bias", "hint": "hint following", "mass": "group mass"}  # an axis's default table headers
STEREOSET_TYPES = ("gender", "race", "religion", "profession", "overall")

MAX_AXIS_BYTES = 4 * 2**20  # an axis file's size limit, checked before it is read
MAX_NODES = 1_000_000  # values an axis file may hold once its YAML aliases are expanded
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's C loader when installed (~50x faster)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 6, 6, 200, 200


def show(value, limit: int = 60) -> str:
    """``value`` as a short phrase for an error message: its kind and (cut) repr, on one line."""
    kind = {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)
    text = _REPR.repr(value).replace("\n", " ")  # bounded: never the whole of a large (or aliased) value
    return kind if value is None else f"{kind} {text if len(text) <= limit else text[: limit - 1] + '…'}"


def expanded_size(root: yaml.Node) -> int:
    """How many nodes ``root`` holds once every alias is expanded, counted without expanding: an alias is the
    node it names, so each distinct node is sized once (a 9-level alias bomb is 9 small sums, not 9^9 nodes)."""
    size: dict[int, int] = {}
    order: list[yaml.Node] = []
    stack, seen = [root], set()
    while stack:  # children before parents, without recursion (a deep file must not overflow the stack)
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        if isinstance(node, yaml.SequenceNode):
            stack += node.value
        elif isinstance(node, yaml.MappingNode):
            stack += [n for kv in node.value for n in kv]
    for node in reversed(order):
        kids = (
            node.value
            if isinstance(node, yaml.SequenceNode)
            else [n for kv in node.value for n in kv]
            if isinstance(node, yaml.MappingNode)
            else []
        )
        size[id(node)] = min(MAX_NODES + 1, 1 + sum(size.get(id(k), 1) for k in kids))
    return size[id(root)]


def parse_axis_file(path: Path) -> dict:
    try:
        if (n_bytes := path.stat().st_size) > MAX_AXIS_BYTES:
            raise DatasetError(
                f"{path} is {n_bytes / 2**20:.1f} MiB; an axis file is at most {MAX_AXIS_BYTES // 2**20} MiB "
                "(the shipped ones are under 25 KiB). Give large prompt sets as prompts: {bias: FILE.jsonl}."
            )
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(
            f"{path} is not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); save it as UTF-8."
        ) from None
    except OSError as e:
        raise DatasetError(f"{path} cannot be read ({e.strerror or e}).") from None
    if not text.strip():
        raise DatasetError(f"{path} is empty: an axis file needs at least 'name' and 'groups'.")
    try:
        node = None if path.suffix == ".json" else yaml.compose(text, Loader=_LOADER)
        big = node is not None and expanded_size(node) > MAX_NODES
        doc = None if big else json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_LOADER)  # noqa: S506 (safe loader)
    except json.JSONDecodeError as e:
        raise DatasetError(
            f"{path}:{e.lineno}: malformed JSON ({e.msg} at column {e.colno}). Fix that line."
        ) from None
    except (yaml.YAMLError, ValueError) as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = str(getattr(e, "problem", None) or e).replace("\n", " ")
        raise DatasetError(f"{path}{where}: malformed YAML ({problem}). Fix that line.") from None
    if big:
        raise DatasetError(
            f"{path}: its aliases (*name) expand to over {MAX_NODES:,} values (an alias bomb?); write the values "
            "out, or nest fewer aliases."
        )
    if not isinstance(doc, dict):
        raise DatasetError(f"{path}: expected a mapping with 'name' and 'groups', got {show(doc)}.")
    return doc


def read_uses(doc: dict, where: str) -> dict:
    """The optional fields the rest of the suite reads: instruction, labels, stereoset, gendered, counterparts."""
    instruction = doc.get("instruction") or ""
    if not isinstance(instruction, str):
        raise DatasetError(f"{where}: instruction must be text, got {show(instruction)}.")
    labels = doc.get("labels") or {}
    if (
        not isinstance(labels, dict)
        or set(labels) - set(LABELS)
        or not all(isinstance(v, str) and visible(v) for v in labels.values())
    ):
        raise DatasetError(
            f"{where}: labels must map some of {list(LABELS)} to text, e.g. labels: {{bias: AFGB}}; got "
            f"{show(labels)}."
        )
    stereoset = doc.get("stereoset", "overall")
    if stereoset not in STEREOSET_TYPES:
        raise DatasetError(
            f"{where}: stereoset must be one of {list(STEREOSET_TYPES)}, got {show(stereoset)}."
        )
    gendered = doc.get("gendered", False)
    if not isinstance(gendered, bool):
        raise DatasetError(f"{where}: gendered must be true or false, got {show(gendered)}.")
    names = [g.get("name") for g in doc["groups"]]
    if gendered and names != ["he", "she"]:
        raise DatasetError(
            f"{where}: gendered: true needs the groups he and she, in that order (the gendered material's "
            f"labels), got {names}; drop it or rename the groups."
        )
    return {
        "instruction": instruction,
        "labels": labels,
        "stereoset": stereoset,
        "gendered": gendered,
        "counterparts": _counterparts(doc.get("counterparts") or [], len(names), where),
    }


def _counterparts(pairs, n_groups: int, where: str) -> tuple[tuple[str, str], ...]:
    """Words naming the same role in the first and the second group ("father", "mother"): what turns a sentence
    about one group into its twin about the other (two-group axes only)."""
    ok = isinstance(pairs, list) and all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(w, str) and w.strip() == w and w for w in p)
        for p in pairs
    )
    if not ok:
        raise DatasetError(
            f"{where}: counterparts must be a list of word pairs, e.g. counterparts: [[father, mother]]; got "
            f"{show(pairs)}."
        )
    if pairs and n_groups != 2:
        raise DatasetError(f"{where}: counterparts pair two groups' words; this axis has {n_groups} groups.")
    return tuple((a, b) for a, b in pairs)


__all__ = [
    "LABELS",
    "MAX_AXIS_BYTES",
    "MAX_NODES",
    "STEREOSET_TYPES",
    "expanded_size",
    "parse_axis_file",
    "read_uses",
    "show",
]
