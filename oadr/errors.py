"""OpenADR errors: one class per 2.0b response code (profile spec, eiResponse/responseCode).

Raise the specific class where the rule lives; the edge (an HTTP handler, the VEN runner) turns
it into a valid reply carrying `code`, once.
"""

from __future__ import annotations

from typing import ClassVar

from oadr.enums import ResponseCode


class OadrError(Exception):
    """The peer sent something OpenADR does not allow; `code` is what we answer."""

    code: ClassVar[ResponseCode] = ResponseCode.DEPLOYMENT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        # What the codec could still read from a message it refused, so the edge can answer
        # with the right reply type and echo the requestID (None: not known).
        self.payload_name: str | None = None
        self.request_id: str | None = None

    def __str__(self) -> str:
        return f"{int(self.code)} {type(self).__name__}: {self.message}"


class OutOfSequence(OadrError):
    code = ResponseCode.OUT_OF_SEQUENCE


class NotAllowed(OadrError):
    code = ResponseCode.NOT_ALLOWED


class InvalidId(OadrError):
    code = ResponseCode.INVALID_ID


class NotRecognized(OadrError):
    code = ResponseCode.NOT_RECOGNIZED


class InvalidData(OadrError):
    code = ResponseCode.INVALID_DATA


class ComplianceError(OadrError):
    code = ResponseCode.COMPLIANCE_ERROR


class SignalNotSupported(OadrError):
    code = ResponseCode.SIGNAL_NOT_SUPPORTED


class ReportNotSupported(OadrError):
    code = ResponseCode.REPORT_NOT_SUPPORTED


class TargetMismatch(OadrError):
    code = ResponseCode.TARGET_MISMATCH


class NotRegistered(OadrError):
    """Not registered or not authorized, including a certificate that does not own the venID."""

    code = ResponseCode.NOT_REGISTERED_OR_AUTHORIZED


class DeploymentError(OadrError):
    code = ResponseCode.DEPLOYMENT_ERROR


class MalformedMessage(InvalidData):
    """The body is not a well-formed, schema-valid oadrPayload at all.

    No request can be read from such a body, so there is no requestID to echo; HTTP edges may
    answer it with a 4xx instead of an eiResponse (see README: our readings of the spec).
    """


class HostileInput(MalformedMessage):
    """Refused before parsing: DOCTYPE/entities, oversize, too deep, wrong encoding."""


class SignatureInvalid(NotRegistered):
    """An XML signature that is missing where required, malformed, or does not verify."""


class ReplayDetected(SignatureInvalid):
    """A ReplayProtect nonce seen before, or a timestamp outside the accepted window."""
