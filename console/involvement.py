"""A prosumer's involvement in events: the one preference the console keeps, and who honours it
(issue 14, "decide how involved they want to be"). Pure.

Only settings that something acts on are offered (no setting that does nothing):
- "Do not include me in events" (`NEVER`) is honoured by the DSO side: the operator's event form
  refuses an event that would reach this prosumer's gateway (`operator_pages.create_event`), and
  saving it opts the prosumer out, at the VTN, of every upcoming event already sent to it (the
  same opt the per-event opt-out records).
- Everything about how the household answers an event it does receive (comfort band, devices
  never touched, longest shift, car and battery reserves, price thresholds, quiet hours) is set
  in the gateway's own preferences file (`ven.policy.Preferences`) and enforced by the gateway;
  the console cannot read or change it and shows it as text (`GATEWAY_ENFORCED`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

AUTOMATIC: Final = "automatic"
NEVER: Final = "never"
CHOICES: Final = {
    AUTOMATIC: "Include me in events: my gateway answers each one within its own preferences",
    NEVER: "Do not include me in events",
}
DEFAULT: Final[dict[str, Any]] = {"involvement": AUTOMATIC}

# What the gateway decides by itself, from its preferences file (ven/policy.py), in the words a
# prosumer reads on the page.
GATEWAY_ENFORCED: Final = (
    ("comfort band", "the room temperatures the heat pump keeps during an event"),
    ("devices", "the devices your gateway never switches (untouchable)"),
    ("longest shift", "the longest it will shift or curtail a device"),
    ("car and battery", "the charge your car and home battery never go below"),
    ("prices", "the price above which it reduces and below which it charges"),
    ("quiet hours", "do-not-disturb windows in which it declines events"),
)


def involvement_of(body: Mapping[str, Any] | None) -> str:
    """The stored choice; anything else (an older console's "ask") counts as automatic."""
    return NEVER if body is not None and body.get("involvement") == NEVER else AUTOMATIC


def excluded(preferences: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """The venIDs whose prosumer asked not to be included in events."""
    return {ven_id for ven_id, body in preferences.items() if involvement_of(body) == NEVER}


def check(fields: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's fields -> the body to store, or messages per field."""
    choice = fields.get("involvement", "")
    if choice not in CHOICES:
        return {"involvement": choice}, {"involvement": "choose one of the options"}
    return {"involvement": choice}, {}
