"""The official OpenADR 2.0b XML schema, loaded once from the installed `openleadr` package.

We do not copy the XSDs: `openleadr` ships the Alliance's files (schema/oadr_20b.xsd and the
files it imports). The package is located without importing it, so this module stays pure.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from lxml import etree

from oadr.errors import MalformedMessage


def schema_dir() -> Path:
    spec = importlib.util.find_spec("openleadr")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'openleadr' package (which ships the 2.0b XSDs) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "schema"


@functools.cache
def xml_schema() -> etree.XMLSchema:
    """The compiled oadr_20b.xsd. The XSDs are trusted files, parsed without network access."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    document = etree.parse(str(schema_dir() / "oadr_20b.xsd"), parser)
    return etree.XMLSchema(document)


def validate(document: etree._Element) -> None:
    """Raise MalformedMessage (454) naming the first schema violation, or return."""
    try:
        xml_schema().assertValid(document)
    except etree.DocumentInvalid as exc:
        raise MalformedMessage(f"not valid OpenADR 2.0b: {exc}") from None
